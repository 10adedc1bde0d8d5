import Foundation
import SparrowEncoder
import Testing

/// Pooled weights against Hugging Face transformers (fixtures encoded in padded batches of 8).
@Suite struct EncoderFidelityTests {
    /// Raw max-pooled logits of every fixture text, in batches of 8 as the fixtures were made.
    static func pooledLogits(_ model: MaskedLanguageModel, tokenizer: WordPieceTokenizer, fixtures: [PooledFixture]) -> [[Float]] {
        stride(from: 0, to: fixtures.count, by: 8).flatMap { start in
            model.maxPooledLogits(fixtures[start..<min(start + 8, fixtures.count)].map { tokenizer.encode($0.text) })
        }
    }

    @Test func spladeTinyMatchesEveryWeightForBothActivations() throws {
        let fixtures = try PooledFixture.load("fixtures/encoder/splade-tiny.jsonl")
        let encoder = try SparseEncoder(modelDirectory: Shared.spladeTiny)
        for fixture in fixtures {
            #expect(encoder.tokenizer.encode(fixture.text) == fixture.inputIDs)
        }
        #expect(fixtures.last!.inputIDs.count == 512, "the last fixture is the truncated long document")
        let logits = Self.pooledLogits(encoder.model, tokenizer: encoder.tokenizer, fixtures: fixtures)
        for activation in Activation.allCases {
            var worst: Float = 0
            var extras = 0
            for (fixture, raw) in zip(fixtures, logits) {
                let expected = try #require(fixture.vectors[activation.rawValue])
                for (id, value) in raw.enumerated() {
                    let weight = activation.apply(value)
                    if let want = expected.top[id] {
                        worst = max(worst, abs(weight - want))
                    } else if weight > 1e-4 {
                        extras += 1
                    }
                }
            }
            #expect(worst <= 1e-4, "\(activation): max abs error \(worst)")
            #expect(extras == 0, "\(activation): \(extras) weights above 1e-4 absent from the fixture")
        }
    }

    @Test(arguments: ["tiny-bert-random", "tiny-distilbert-random"])
    func randomModelsMatchTopWeightsNnzAndL1(name: String) throws {
        let fixtures = try PooledFixture.load("fixtures/encoder/\(name).jsonl")
        let directory = Shared.path("fixtures/models/\(name)")
        let model = try MaskedLanguageModel(modelDirectory: directory)
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: directory)
        let logits = Self.pooledLogits(model, tokenizer: tokenizer, fixtures: fixtures)
        for activation in Activation.allCases {
            for (index, (fixture, raw)) in zip(fixtures, logits).enumerated() {
                let expected = try #require(fixture.vectors[activation.rawValue])
                let weights = raw.map(activation.apply)
                var worst: Float = 0
                for (id, want) in expected.top { worst = max(worst, abs(weights[id] - want)) }
                let nnz = weights.filter { $0 > 0 }.count
                let l1 = weights.reduce(0.0) { $0 + Double($1) }
                #expect(worst <= 1e-4, "\(name) \(activation) #\(index): top-256 max error \(worst)")
                #expect(abs(Double(nnz - expected.nnz)) <= 0.001 * Double(expected.nnz), "\(name) #\(index): nnz \(nnz) vs \(expected.nnz)")
                #expect(abs(l1 - expected.l1) <= 1e-3 * expected.l1, "\(name) #\(index): l1 \(l1) vs \(expected.l1)")
            }
        }
    }

    @Test func batchedEqualsOneAtATime() throws {
        let encoder = try SparseEncoder(modelDirectory: Shared.spladeTiny)
        let texts = try PooledFixture.load("fixtures/encoder/splade-tiny.jsonl").prefix(9).map(\.text) + ["", "a"]
        let batched = encoder.encode(texts)
        for (text, vector) in zip(texts, batched) {
            let single = encoder.encode([text])[0]
            #expect(single.terms == vector.terms)
            for (a, b) in zip(single.weights, vector.weights) { #expect(abs(a - b) <= 1e-5) }
        }
    }

    @Test func productVectorsZeroSpecialTokensAndApplyPruning() throws {
        let text = "Alterations of the architecture of cerebral white matter in the developing human brain."
        let full = try SparseEncoder(modelDirectory: Shared.spladeTiny).encode([text])[0]
        for id in [0, 100, 101, 102, 103] { #expect(full[UInt32(id)] == 0) }
        let top = try SparseEncoder(modelDirectory: Shared.spladeTiny, pruning: .topK(10)).encode([text])[0]
        #expect(top.count == 10)
        #expect(top.weights.min()! >= full.weights.sorted(by: >)[9])
        let ratio = try SparseEncoder(modelDirectory: Shared.spladeTiny, pruning: .maxRatio(0.5)).encode([text])[0]
        #expect(ratio.weights.allSatisfy { $0 >= 0.5 * full.weights.max()! })
        #expect(ratio.count < full.count)
    }
}
