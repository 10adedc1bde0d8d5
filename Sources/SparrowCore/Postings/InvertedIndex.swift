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

    /// Inverts document vectors; document `i` of `vectors` gets internal id `i`.
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
            lists[term] = PostingList(docs: ids, weights: codes[term]!)
        }
        self.init(lists: lists, documentCount: vectors.count, quantizer: quantizer)
    }

    /// Total postings over all terms.
    public var postingCount: Int { lists.values.reduce(0) { $0 + $1.count } }

    /// Bytes the decoded lists hold in memory.
    public var residentBytes: Int { lists.values.reduce(0) { $0 + $1.residentBytes } }
}
