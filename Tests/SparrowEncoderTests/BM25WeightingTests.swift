import Foundation
import SparrowCore
import SparrowEncoder
import Testing

@Suite struct BM25WeightingTests {
    @Test func weightsFollowTheBM25FormulaAndSkipSpecialTokens() {
        // Vocabulary ids 0...4; id 0 is special. idf: 1, 2, 3, 4, 5 by id.
        let idf = IDFTable(weights: [1, 2, 3, 4, 5])
        let weighting = BM25Weighting(idf: idf, averageLength: 4, special: [0], k1: 0.9, b: 0.4)
        let vector = weighting.vector(tokens: [0, 2, 2, 3, 0])
        // dl = 3 (special tokens excluded), norm = 0.9 · (0.6 + 0.4 · 3 / 4) = 0.81.
        let norm = 0.9 * (0.6 + 0.4 * 3.0 / 4.0)
        #expect(vector.terms == [2, 3])
        #expect(abs(Double(vector.weights[0]) - 3 * 2 * 1.9 / (2 + norm)) < 1e-5)
        #expect(abs(Double(vector.weights[1]) - 4 * 1 * 1.9 / (1 + norm)) < 1e-5)
        #expect(BM25Weighting.length([0, 2, 2, 3, 0], special: [0]) == 3)
    }
}
