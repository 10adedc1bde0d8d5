import Foundation
import SparrowCore

/// Model-free document weights: BM25 over WordPiece tokens, so that an index can be built
/// with no neural model. A document's weight for token t is
/// `idf(t) · tf · (k1 + 1) / (tf + k1 · (1 − b + b · dl / avgdl))`, with `idf` as `IDFCounter`
/// computes it, `tf` the token's count in the document and `dl` its number of non-special
/// tokens; the query side weighs each distinct token 1 (`IDFTable.uniform`), so that the dot
/// product is the BM25 score.
public struct BM25Weighting: Sendable {
    public let idf: IDFTable
    public let averageLength: Double
    public let k1: Double
    public let b: Double
    private let special: Set<Int32>

    public init(idf: IDFTable, averageLength: Double, special: [Int32], k1: Double = 0.9, b: Double = 0.4) {
        self.idf = idf
        self.averageLength = max(averageLength, 1)
        self.k1 = k1
        self.b = b
        self.special = Set(special)
    }

    /// The number of tokens BM25 counts in `tokens` (special tokens excluded).
    public static func length(_ tokens: [Int32], special: Set<Int32>) -> Int {
        tokens.reduce(0) { $0 + (special.contains($1) ? 0 : 1) }
    }

    /// The document vector of a tokenized document.
    public func vector(tokens: [Int32]) -> SparseVector {
        var counts: [Int32: Int] = [:]
        for id in tokens where !special.contains(id) { counts[id, default: 0] += 1 }
        let length = Double(counts.values.reduce(0, +))
        let norm = k1 * (1 - b + b * length / averageLength)
        return SparseVector(pairs: counts.map { id, tf in
            let tf = Double(tf)
            return (UInt32(id), Float(Double(idf[id]) * tf * (k1 + 1) / (tf + norm)))
        })
    }
}

extension IDFTable {
    /// Every token weighs 1: the query side of BM25 weighting.
    public static func uniform(vocabularySize: Int) -> IDFTable {
        IDFTable(weights: [Float](repeating: 1, count: vocabularySize))
    }
}
