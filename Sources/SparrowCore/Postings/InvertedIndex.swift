/// An in-memory inverted index over dense internal document ids `0..<documentCount`:
/// one `PostingList` per term id, weights quantized with one `WeightQuantizer`.
public struct InvertedIndex: Sendable {
    public let lists: [UInt32: PostingList]
    public let documentCount: Int
    public let quantizer: WeightQuantizer

    public init(lists: [UInt32: PostingList], documentCount: Int, quantizer: WeightQuantizer) {
        self.lists = lists
        self.documentCount = documentCount
        self.quantizer = quantizer
    }

    /// Inverts document vectors; document `i` of `vectors` gets internal id `i`. Lists are in
    /// impact tiers (`ImpactTiers`), as a built shard's are.
    public init(vectors: [SparseVector], quantizer: WeightQuantizer? = nil) {
        let quantizer = quantizer ?? WeightQuantizer(maxWeight: vectors.lazy.compactMap { $0.weights.max() }.max() ?? 1)
        var docs: [UInt32: [UInt32]] = [:]
        var codes: [UInt32: [UInt8]] = [:]
        for (doc, vector) in vectors.enumerated() {
            for (term, weight) in vector.entries where weight > 0 {
                docs[term, default: []].append(UInt32(doc))
                codes[term, default: []].append(quantizer.quantize(weight))
            }
        }
        var lists: [UInt32: PostingList] = [:]
        for (term, ids) in docs {
            var ids = ids
            var weights = codes[term]!
            let ends = ImpactTiers.split(docs: &ids, codes: &weights)
            lists[term] = PostingList(docs: ids, weights: weights, tierEnds: ends)
        }
        self.init(lists: lists, documentCount: vectors.count, quantizer: quantizer)
    }

    /// Each query term's list with its query weight (terms without postings left out).
    public func postings(of query: QuantizedQuery) -> [(list: PostingList, weight: UInt64)] {
        var found: [(list: PostingList, weight: UInt64)] = []
        found.reserveCapacity(query.terms.count)
        for (term, weight) in zip(query.terms, query.weights) {
            if let list = lists[term] { found.append((list, weight)) }
        }
        return found
    }

    /// Total postings over all terms.
    public var postingCount: Int { lists.values.reduce(0) { $0 + $1.count } }

    /// Bytes the decoded lists hold in memory.
    public var residentBytes: Int { lists.values.reduce(0) { $0 + $1.residentBytes } }
}
