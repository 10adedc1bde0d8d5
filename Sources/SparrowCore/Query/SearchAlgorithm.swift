/// A top-k retrieval algorithm over an `InvertedIndex`. Every implementation returns exactly
/// the same documents in the same order as `ExhaustiveSearch`: integer scores, larger first,
/// equal scores by smaller internal id.
public protocol SearchAlgorithm: Sendable {
    func search(_ query: QuantizedQuery, in index: InvertedIndex, k: Int, filter: DocumentFilter?) -> [ScoredDoc]
}

extension SearchAlgorithm {
    /// Cursors of the query terms that have postings.
    func cursors(_ query: QuantizedQuery, in index: InvertedIndex) -> [PostingCursor] {
        var cursors: [PostingCursor] = []
        cursors.reserveCapacity(query.terms.count)
        for (term, weight) in zip(query.terms, query.weights) {
            if let list = index.lists[term] { cursors.append(PostingCursor(list: list, queryWeight: weight)) }
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
            for (doc, code) in zip(cursor.list.docs, cursor.list.weights) {
                scores[Int(doc)] += cursor.queryWeight * UInt64(code)
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
