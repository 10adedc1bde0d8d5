import Foundation
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

    /// Loads the tokenizer of `modelDirectory` and the IDF table at `idfPath` (default:
    /// `modelDirectory/idf.json`); `uniform` weighs every token 1 instead (BM25 indexes).
    public static func load(modelDirectory: String, idfPath: String? = nil, uniform: Bool = false) throws -> QueryEncoder {
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: modelDirectory)
        if uniform { return QueryEncoder(tokenizer: tokenizer, idf: .uniform(vocabularySize: tokenizer.vocabulary.count)) }
        let idf = idfPath ?? (modelDirectory as NSString).appendingPathComponent("idf.json")
        return QueryEncoder(tokenizer: tokenizer, idf: try IDFTable.load(path: idf, vocabulary: tokenizer.vocabulary))
    }

    /// The query's tokens and their weights.
    public func tokenWeights(_ text: String) -> [String: Float] {
        encode(text).tokenWeights(tokenizer.vocabulary)
    }

    /// The query's sparse vector.
    public func encode(_ text: String) -> SparseVector {
        let special = Set(tokenizer.special.all)
        let ids = tokenizer.encode(text).filter { !special.contains($0) }
        return SparseVector(pairs: Set(ids).map { (UInt32($0), idf[$0]) })
    }
}

extension SparseVector {
    /// The weights by token text.
    public func tokenWeights(_ vocabulary: Vocabulary) -> [String: Float] {
        Dictionary(uniqueKeysWithValues: entries.map { (vocabulary.tokens[Int($0.0)], $0.1) })
    }
}
