import Foundation

/// A dense layer `y = x Wᵀ + b` with `W` stored row-major as `[out × in]`, as PyTorch saves it.
struct Linear: Sendable {
    let weight: [Float]
    let bias: [Float]
    let inFeatures: Int
    let outFeatures: Int

    /// Stacks layers with the same input size into one (for fused Q/K/V projections).
    static func stacked(_ parts: [Linear]) -> Linear {
        Linear(
            weight: parts.flatMap(\.weight), bias: parts.flatMap(\.bias),
            inFeatures: parts[0].inFeatures, outFeatures: parts.reduce(0) { $0 + $1.outFeatures }
        )
    }
}

/// LayerNorm scale and shift.
struct LayerNormWeights: Sendable {
    let gamma: [Float]
    let beta: [Float]
    let eps: Float
}

/// One transformer block (post-norm, as BERT and DistilBERT).
struct TransformerLayerWeights: Sendable {
    /// Q, K and V projections stacked: output columns `[Q | K | V]`.
    let qkv: Linear
    let attentionOutput: Linear
    let attentionNorm: LayerNormWeights
    let intermediate: Linear
    let output: Linear
    let outputNorm: LayerNormWeights
}

/// All parameters of a BERT or DistilBERT masked-LM, widened to `Float`.
struct ModelWeights: Sendable {
    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    /// Row 0 of the token-type table (all Sparrow inputs are one segment), or zeros.
    let tokenType0: [Float]
    let embeddingNorm: LayerNormWeights
    let layers: [TransformerLayerWeights]
    let transform: Linear
    let transformNorm: LayerNormWeights
    /// `[vocab × hidden]`: the word embeddings when the decoder is tied.
    let decoderWeight: [Float]
    let decoderBias: [Float]

    /// Reads every tensor the architecture needs, accepting both the old
    /// (`LayerNorm.gamma/beta`) and new (`weight/bias`) names, and checks each shape.
    init(file: SafeTensors, config: ModelConfig) throws {
        let h = config.hiddenSize
        let v = config.vocabSize
        let eps = config.layerNormEps
        func linear(_ prefix: String, out: Int, in inFeatures: Int) throws -> Linear {
            Linear(
                weight: try file.floats("\(prefix).weight", shape: [out, inFeatures]),
                bias: try file.floats("\(prefix).bias", shape: [out]),
                inFeatures: inFeatures, outFeatures: out
            )
        }
        func norm(_ prefix: String) throws -> LayerNormWeights {
            let gammaName = file.contains("\(prefix).gamma") ? "\(prefix).gamma" : "\(prefix).weight"
            let betaName = file.contains("\(prefix).beta") ? "\(prefix).beta" : "\(prefix).bias"
            return LayerNormWeights(gamma: try file.floats(gammaName, shape: [h]), beta: try file.floats(betaName, shape: [h]), eps: eps)
        }
        switch config.architecture {
        case .bert:
            let base = file.contains("bert.embeddings.word_embeddings.weight") ? "bert." : ""
            wordEmbeddings = try file.floats("\(base)embeddings.word_embeddings.weight", shape: [v, h])
            positionEmbeddings = try file.floats("\(base)embeddings.position_embeddings.weight", shape: [config.maxPositions, h])
            tokenType0 = Array(try file.floats("\(base)embeddings.token_type_embeddings.weight", shape: [config.typeVocabSize, h]).prefix(h))
            embeddingNorm = try norm("\(base)embeddings.LayerNorm")
            layers = try (0..<config.layers).map { index in
                let p = "\(base)encoder.layer.\(index)"
                return TransformerLayerWeights(
                    qkv: .stacked([
                        try linear("\(p).attention.self.query", out: h, in: h),
                        try linear("\(p).attention.self.key", out: h, in: h),
                        try linear("\(p).attention.self.value", out: h, in: h),
                    ]),
                    attentionOutput: try linear("\(p).attention.output.dense", out: h, in: h),
                    attentionNorm: try norm("\(p).attention.output.LayerNorm"),
                    intermediate: try linear("\(p).intermediate.dense", out: config.intermediateSize, in: h),
                    output: try linear("\(p).output.dense", out: h, in: config.intermediateSize),
                    outputNorm: try norm("\(p).output.LayerNorm")
                )
            }
            transform = try linear("cls.predictions.transform.dense", out: h, in: h)
            transformNorm = try norm("cls.predictions.transform.LayerNorm")
            decoderWeight = file.contains("cls.predictions.decoder.weight")
                ? try file.floats("cls.predictions.decoder.weight", shape: [v, h]) : wordEmbeddings
            decoderBias = try file.floats(
                file.contains("cls.predictions.decoder.bias") ? "cls.predictions.decoder.bias" : "cls.predictions.bias", shape: [v])
        case .distilBert:
            let base = "distilbert."
            wordEmbeddings = try file.floats("\(base)embeddings.word_embeddings.weight", shape: [v, h])
            positionEmbeddings = try file.floats("\(base)embeddings.position_embeddings.weight", shape: [config.maxPositions, h])
            tokenType0 = [Float](repeating: 0, count: h)
            embeddingNorm = try norm("\(base)embeddings.LayerNorm")
            layers = try (0..<config.layers).map { index in
                let p = "\(base)transformer.layer.\(index)"
                return TransformerLayerWeights(
                    qkv: .stacked([
                        try linear("\(p).attention.q_lin", out: h, in: h),
                        try linear("\(p).attention.k_lin", out: h, in: h),
                        try linear("\(p).attention.v_lin", out: h, in: h),
                    ]),
                    attentionOutput: try linear("\(p).attention.out_lin", out: h, in: h),
                    attentionNorm: try norm("\(p).sa_layer_norm"),
                    intermediate: try linear("\(p).ffn.lin1", out: config.intermediateSize, in: h),
                    output: try linear("\(p).ffn.lin2", out: h, in: config.intermediateSize),
                    outputNorm: try norm("\(p).output_layer_norm")
                )
            }
            transform = try linear("vocab_transform", out: h, in: h)
            transformNorm = try norm("vocab_layer_norm")
            decoderWeight = file.contains("vocab_projector.weight")
                ? try file.floats("vocab_projector.weight", shape: [v, h]) : wordEmbeddings
            decoderBias = try file.floats("vocab_projector.bias", shape: [v])
        }
    }
}
