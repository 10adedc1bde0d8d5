import SparrowCore
import Testing

/// A generated corpus shape.
struct CorpusShape: CustomTestStringConvertible, Sendable {
    var documents: Int
    var vocabulary: Int
    var termsPerDocument: Int
    /// Zipf-like term popularity when true, uniform when false.
    var skewed: Bool
    /// Weights drawn from a handful of values, to force score ties.
    var coarseWeights: Bool
    var seed: UInt64

    var testDescription: String {
        "\(documents) docs, vocab \(vocabulary), \(skewed ? "skewed" : "flat"), \(coarseWeights ? "coarse" : "fine") weights, seed \(seed)"
    }

    func term(_ rng: inout SplitMix64) -> UInt32 {
        guard skewed else { return UInt32.random(in: 0..<UInt32(vocabulary), using: &rng) }
        // Inverse-CDF of a power law: small ids are common, large ids rare.
        let u = Double.random(in: 0..<1, using: &rng)
        return UInt32(min(Double(vocabulary - 1), Double(vocabulary) * u * u * u))
    }

    func weight(_ rng: inout SplitMix64) -> Float {
        coarseWeights ? Float(Int.random(in: 1...4, using: &rng)) : Float.random(in: 0.01...3, using: &rng)
    }

    func corpus() -> [SparseVector] {
        var rng = SplitMix64(seed: seed)
        return (0..<documents).map { _ in
            let n = Int.random(in: 1...termsPerDocument, using: &rng)
            return SparseVector(pairs: (0..<n).map { _ in (term(&rng), weight(&rng)) })
        }
    }

    func queries(_ count: Int) -> [SparseVector] {
        var rng = SplitMix64(seed: seed ^ 0xABCDEF)
        return (0..<count).map { _ in
            let n = Int.random(in: 1...24, using: &rng)
            // Some ids beyond the vocabulary: terms absent from the index.
            return SparseVector(pairs: (0..<n).map { _ in
                (Bool.random(using: &rng) ? term(&rng) : UInt32(vocabulary + Int.random(in: 0..<5, using: &rng)), weight(&rng))
            })
        }
    }
}

@Suite struct SearchAlgorithmTests {
    static let shapes: [CorpusShape] = [
        CorpusShape(documents: 0, vocabulary: 50, termsPerDocument: 5, skewed: false, coarseWeights: false, seed: 1),
        CorpusShape(documents: 1, vocabulary: 50, termsPerDocument: 5, skewed: false, coarseWeights: false, seed: 2),
        CorpusShape(documents: 37, vocabulary: 20, termsPerDocument: 8, skewed: false, coarseWeights: true, seed: 3),
        CorpusShape(documents: 1000, vocabulary: 300, termsPerDocument: 30, skewed: true, coarseWeights: false, seed: 4),
        CorpusShape(documents: 3000, vocabulary: 2000, termsPerDocument: 60, skewed: true, coarseWeights: true, seed: 5),
        CorpusShape(documents: 5000, vocabulary: 500, termsPerDocument: 20, skewed: false, coarseWeights: false, seed: 6),
        CorpusShape(documents: 50000, vocabulary: 5000, termsPerDocument: 40, skewed: true, coarseWeights: false, seed: 7),
    ]

    @Test(arguments: shapes)
    func fastAlgorithmsEqualTheOracle(shape: CorpusShape) {
        let index = InvertedIndex(vectors: shape.corpus())
        let oracle = ExhaustiveSearch()
        // The default window, and a tiny one so that every corpus spans many windows.
        let variants: [any SearchAlgorithm] = [BlockMaxMaxScore(), BlockMaxMaxScore(windowSize: 64), DenseTermAtATime()]
        for (n, query) in shape.queries(shape.documents >= 50000 ? 30 : 60).enumerated() {
            let quantized = QuantizedQuery(query, documents: index.quantizer)
            for k in [1, 10, 100, shape.documents + 5] {
                let expected = oracle.search(quantized, in: index, k: k, filter: nil)
                for pruned in variants {
                    let actual = pruned.search(quantized, in: index, k: k, filter: nil)
                    #expect(actual == expected, "query \(n), k \(k), \(pruned)")
                }
            }
        }
    }

    @Test(arguments: shapes.filter { $0.documents > 0 && $0.documents <= 5000 })
    func filteredSearchEqualsTheFilteredOracle(shape: CorpusShape) {
        let index = InvertedIndex(vectors: shape.corpus())
        var filter = DocumentFilter(count: index.documentCount, allowed: false)
        for doc in stride(from: 0, to: index.documentCount, by: 3) { filter.insert(UInt32(doc)) }
        for query in shape.queries(20) {
            let quantized = QuantizedQuery(query, documents: index.quantizer)
            let expected = ExhaustiveSearch().search(quantized, in: index, k: 10, filter: filter)
            #expect(expected.allSatisfy { $0.doc % 3 == 0 })
            #expect(BlockMaxMaxScore().search(quantized, in: index, k: 10, filter: filter) == expected)
            #expect(BlockMaxMaxScore(windowSize: 64).search(quantized, in: index, k: 10, filter: filter) == expected)
            #expect(DenseTermAtATime().search(quantized, in: index, k: 10, filter: filter) == expected)
        }
    }

    @Test func tiesRankTheSmallerDocumentFirst() {
        let docs = (0..<300).map { _ in SparseVector(pairs: [(7, 1.0)]) }
        let index = InvertedIndex(vectors: docs)
        let query = QuantizedQuery(SparseVector(pairs: [(7, 2.0)]), documents: index.quantizer)
        #expect(BlockMaxMaxScore().search(query, in: index, k: 5, filter: nil).map(\.doc) == [0, 1, 2, 3, 4])
        #expect(DenseTermAtATime().search(query, in: index, k: 5, filter: nil).map(\.doc) == [0, 1, 2, 3, 4])
    }

    /// 300 terms at full weight can sum past 2^32: the dense scorer must widen its slots.
    @Test func denseScoresBeyondThirtyTwoBitsMatchTheOracle() {
        let docs = (0..<50).map { doc in
            let weights: [Float] = (0..<300).map { term in doc % 10 == 0 ? 7 : Float(1 + (doc + term) % 7) }
            return SparseVector(pairs: weights.enumerated().map { (UInt32($0.offset), $0.element) })
        }
        let index = InvertedIndex(vectors: docs)
        let query = QuantizedQuery(SparseVector(pairs: (0..<300).map { (UInt32($0), 1.0) }), documents: index.quantizer)
        let expected = ExhaustiveSearch().search(query, in: index, k: 10, filter: nil)
        #expect(expected[0].score > UInt64(UInt32.max))
        #expect(DenseTermAtATime().search(query, in: index, k: 10, filter: nil) == expected)
    }

    @Test func topKQueueKeepsTheBestInRankOrder() {
        var queue = TopKQueue(k: 3)
        for (doc, score) in [(5, 10), (1, 10), (2, 30), (9, 5), (3, 10), (4, 0)] {
            queue.insert(ScoredDoc(doc: UInt32(doc), score: UInt64(score)))
        }
        #expect(queue.sorted() == [ScoredDoc(doc: 2, score: 30), ScoredDoc(doc: 1, score: 10), ScoredDoc(doc: 3, score: 10)])
        #expect(queue.threshold == 10)
    }
}
