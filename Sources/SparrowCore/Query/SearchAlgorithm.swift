/// A top-k retrieval algorithm over an `InvertedIndex`. Every implementation returns exactly
/// the same documents in the same order as `ExhaustiveSearch`: integer scores, larger first,
/// equal scores by smaller internal id.
public protocol SearchAlgorithm: Sendable {
    func search(_ query: QuantizedQuery, in index: InvertedIndex, k: Int, filter: DocumentFilter?) -> [ScoredDoc]
}

extension SearchAlgorithm {
    /// A cursor on each tier of each query term that has postings.
    func cursors(_ query: QuantizedQuery, in index: InvertedIndex) -> [PostingCursor] {
        var cursors: [PostingCursor] = []
        cursors.reserveCapacity(query.terms.count)
        for (list, weight) in index.postings(of: query) {
            for tier in list.tiers.indices { cursors.append(PostingCursor(list: list, tier: tier, queryWeight: weight)) }
        }
        return cursors
    }
}

/// The oracle: scores every posting of every query term (term at a time) into a dense
/// accumulator, then keeps the best `k`.
public struct ExhaustiveSearch: SearchAlgorithm {
    public init() {}

    public func search(_ query: QuantizedQuery, in index: InvertedIndex, k: Int, filter: DocumentFilter?) -> [ScoredDoc] {
        var scores = [UInt64](repeating: 0, count: index.documentCount)
        for cursor in cursors(query, in: index) {
            for p in cursor.position..<cursor.endPosition {
                scores[Int(cursor.list.docs[p])] += cursor.queryWeight * UInt64(cursor.list.weights[p])
            }
        }
        var top = TopKQueue(k: k)
        for (doc, score) in scores.enumerated() where score > 0 {
            if let filter, !filter.contains(UInt32(doc)) { continue }
            top.insert(ScoredDoc(doc: UInt32(doc), score: score))
        }
        return top.sorted()
    }
}
