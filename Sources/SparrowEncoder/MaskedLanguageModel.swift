import Foundation

/// A BERT or DistilBERT masked-LM that returns, per input sequence, the maximum over its
/// tokens of each vocabulary logit.
///
/// Sequences of a batch are packed end to end (no padding): the dense layers run once over
/// all real tokens and attention runs per sequence. This is exactly what a padded batch
/// with an attention mask computes, without the work spent on padding.
public final class MaskedLanguageModel: Sendable {
    public let config: ModelConfig
    let weights: ModelWeights
    /// Vocabulary rows and tokens per decoder tile while max-pooling.
    private let vocabChunk = 512
    private let rowBlock = 256

    /// Loads `config.json` and `model.safetensors` from a Hugging Face model folder.
    public convenience init(modelDirectory: String) throws {
        let config = try ModelConfig.load(path: (modelDirectory as NSString).appendingPathComponent("config.json"))
        try self.init(modelDirectory: modelDirectory, config: config)
    }

    /// Loads the weights of `modelDirectory` for a configuration already read and checked.
    convenience init(modelDirectory: String, config: ModelConfig) throws {
        let file = try SafeTensors(path: (modelDirectory as NSString).appendingPathComponent("model.safetensors"))
        try self.init(config: config, weights: ModelWeights(file: file, config: config))
    }

    init(config: ModelConfig, weights: ModelWeights) throws {
        self.config = config
        self.weights = weights
        Kernels.useSingleThreadedBLAS()
    }

    /// Max-pooled MLM logits (decoder bias included) of each sequence: `vocabSize` floats each.
    /// Every sequence must be non-empty, at most `maxPositions` long, with ids below `vocabSize`.
    public func maxPooledLogits(_ sequences: [[Int32]]) -> [[Float]] {
        let h = config.hiddenSize
        let lengths = sequences.map(\.count)
        let rows = lengths.reduce(0, +)
        precondition(lengths.allSatisfy { $0 > 0 && $0 <= config.maxPositions }, "sequence length out of range")
        guard rows > 0 else { return [] }
        var hidden = [Float](repeating: 0, count: rows * h)
        hidden.withUnsafeMutableBufferPointer { x in
            embed(sequences, into: x.baseAddress!)
            var scratch = Scratch(rows: rows, config: config, longest: lengths.max()!)
            for layer in weights.layers {
                encoderLayer(layer, x: x.baseAddress!, lengths: lengths, scratch: &scratch)
            }
            // MLM transform: LayerNorm(GELU(x Wᵀ + b)), written back into `x`.
            scratch.a.withUnsafeMutableBufferPointer { t in
                Kernels.linear(weights.transform, rows: rows, x: x.baseAddress!, out: t.baseAddress!)
                Kernels.gelu(t.baseAddress!, count: rows * h)
                Kernels.addAndNormalize(t.baseAddress!, residual: nil, rows: rows, width: h, norm: weights.transformNorm)
                x.baseAddress!.update(from: t.baseAddress!, count: rows * h)
            }
        }
        return decodeMaxPooled(hidden: hidden, lengths: lengths)
    }

    /// Word + position (+ token type 0) embeddings, then LayerNorm.
    private func embed(_ sequences: [[Int32]], into x: UnsafeMutablePointer<Float>) {
        let h = config.hiddenSize
        var row = 0
        for sequence in sequences {
            for (position, id) in sequence.enumerated() {
                precondition(id >= 0 && Int(id) < config.vocabSize, "token id \(id) out of range")
                let line = x + row * h
                let word = Int(id) * h
                let pos = position * h
                for j in 0..<h {
                    line[j] = weights.wordEmbeddings[word + j] + weights.positionEmbeddings[pos + j] + weights.tokenType0[j]
                }
                row += 1
            }
        }
        Kernels.addAndNormalize(x, residual: nil, rows: row, width: h, norm: weights.embeddingNorm)
    }

    /// Work buffers reused across layers.
    private struct Scratch {
        var qkv: [Float]
        var context: [Float]
        var a: [Float]
        var intermediate: [Float]
        var scores: [Float]

        init(rows: Int, config: ModelConfig, longest: Int) {
            let h = config.hiddenSize
            qkv = [Float](repeating: 0, count: rows * 3 * h)
            context = [Float](repeating: 0, count: rows * h)
            a = [Float](repeating: 0, count: rows * h)
            intermediate = [Float](repeating: 0, count: rows * config.intermediateSize)
            scores = [Float](repeating: 0, count: longest * longest)
        }
    }

    /// One post-norm transformer block over all packed rows; attention is per sequence.
    private func encoderLayer(_ layer: TransformerLayerWeights, x: UnsafeMutablePointer<Float>, lengths: [Int], scratch: inout Scratch) {
        let h = config.hiddenSize
        let heads = config.heads
        let headSize = h / heads
        let rows = lengths.reduce(0, +)
        let scale = 1 / Float(headSize).squareRoot()
        scratch.qkv.withUnsafeMutableBufferPointer { qkvBuffer in
            let qkv = qkvBuffer.baseAddress!
            Kernels.linear(layer.qkv, rows: rows, x: x, out: qkv)
            scratch.context.withUnsafeMutableBufferPointer { contextBuffer in
                scratch.scores.withUnsafeMutableBufferPointer { scoresBuffer in
                    let scores = scoresBuffer.baseAddress!
                    var offset = 0
                    for length in lengths {
                        for head in 0..<heads {
                            let q = qkv + offset * 3 * h + head * headSize
                            let k = q + h
                            let v = q + 2 * h
                            Kernels.gemmTransposedB(m: length, n: length, k: headSize, alpha: scale,
                                                    a: q, lda: 3 * h, b: k, ldb: 3 * h, c: scores, ldc: length)
                            Kernels.softmaxRows(scores, rows: length, width: length)
                            Kernels.gemm(m: length, n: headSize, k: length, a: scores, lda: length, b: v, ldb: 3 * h,
                                         c: contextBuffer.baseAddress! + offset * h + head * headSize, ldc: h)
                        }
                        offset += length
                    }
                }
                scratch.a.withUnsafeMutableBufferPointer { a in
                    Kernels.linear(layer.attentionOutput, rows: rows, x: contextBuffer.baseAddress!, out: a.baseAddress!)
                    Kernels.addAndNormalize(x, residual: a.baseAddress!, rows: rows, width: h, norm: layer.attentionNorm)
                }
            }
        }
        scratch.intermediate.withUnsafeMutableBufferPointer { inter in
            Kernels.linear(layer.intermediate, rows: rows, x: x, out: inter.baseAddress!)
            Kernels.gelu(inter.baseAddress!, count: rows * config.intermediateSize)
            scratch.a.withUnsafeMutableBufferPointer { a in
                Kernels.linear(layer.output, rows: rows, x: inter.baseAddress!, out: a.baseAddress!)
                Kernels.addAndNormalize(x, residual: a.baseAddress!, rows: rows, width: h, norm: layer.outputNorm)
            }
        }
    }

    /// Decoder logits in tiles of `rowBlock` tokens × `vocabChunk` vocabulary rows, small enough
    /// to stay in cache between the matrix product and the max-pool; the bias is added after
    /// the max (it is the same for every token of a column).
    private func decodeMaxPooled(hidden: [Float], lengths: [Int]) -> [[Float]] {
        let h = config.hiddenSize
        let vocab = config.vocabSize
        var pooled = [[Float]](repeating: [Float](repeating: -.infinity, count: vocab), count: lengths.count)
        var logits = [Float](repeating: 0, count: rowBlock * vocabChunk)
        hidden.withUnsafeBufferPointer { x in
            weights.decoderWeight.withUnsafeBufferPointer { w in
                logits.withUnsafeMutableBufferPointer { out in
                    var start = 0
                    while start < vocab {
                        let width = min(vocabChunk, vocab - start)
                        var offset = 0
                        for (index, length) in lengths.enumerated() {
                            pooled[index].withUnsafeMutableBufferPointer { target in
                                var row = 0
                                while row < length {
                                    let rows = min(rowBlock, length - row)
                                    Kernels.gemmTransposedB(m: rows, n: width, k: h, a: x.baseAddress! + (offset + row) * h, lda: h,
                                                            b: w.baseAddress! + start * h, ldb: h, c: out.baseAddress!, ldc: width)
                                    Kernels.columnMax(out.baseAddress!, rowCount: rows, width: width, stride: width,
                                                      into: target.baseAddress! + start)
                                    row += rows
                                }
                            }
                            offset += length
                        }
                        start += width
                    }
                }
            }
        }
        weights.decoderBias.withUnsafeBufferPointer { bias in
            for index in pooled.indices {
                pooled[index].withUnsafeMutableBufferPointer { target in
                    for j in 0..<vocab { target[j] += bias[j] }
                }
            }
        }
        return pooled
    }
}
