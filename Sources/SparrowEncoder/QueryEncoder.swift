import SparrowCore

/// Inference-free query encoding (OpenSearch doc-only models): the distinct non-special
/// WordPiece tokens of the query, each weighted by the IDF table (1.0 where it has none).
public struct QueryEncoder: Sendable {
    public let tokenizer: WordPieceTokenizer
    public let idf: IDFTable

    public init(tokenizer: WordPieceTokenizer, idf: IDFTable) {
        self.tokenizer = tokenizer
        self.idf = idf
    }

    /// The query's sparse vector.
    public func encode(_ text: String) -> SparseVector {
        let special = Set(tokenizer.special.all)
        let ids = tokenizer.encode(text).filter { !special.contains($0) }
        return SparseVector(pairs: Set(ids).map { (UInt32($0), idf[$0]) })
    }
}
