import Foundation

/// The masked-LM architectures Sparrow runs.
public enum Architecture: String, Sendable {
    case bert = "BertForMaskedLM"
    case distilBert = "DistilBertForMaskedLM"
}

/// The dimensions of a transformer MLM, read from a Hugging Face `config.json`.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: Architecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    /// 0 for DistilBERT, which has no token-type embeddings.
    public var typeVocabSize: Int
    public var layerNormEps: Float

    /// Reads and validates `config.json`.
    public static func load(path: String) throws -> ModelConfig {
        let json = try JSONFile.object(at: path)
        let architectures = json["architectures"] as? [String] ?? []
        let name = architectures.first ?? (json["model_type"] as? String ?? "unknown")
        guard let architecture = architectures.lazy.compactMap(Architecture.init(rawValue:)).first else {
            throw EncoderError.unsupportedArchitecture(path: path, found: name)
        }
        func int(_ key: String) throws -> Int {
            guard let value = json[key] as? Int, value > 0 else {
                throw EncoderError.invalidJSON(path: path, reason: "field '\(key)' is missing or not a positive integer")
            }
            return value
        }
        func activation(_ key: String) throws {
            let value = json[key] as? String ?? "gelu"
            guard value == "gelu" else {
                throw EncoderError.invalidJSON(path: path, reason: "field '\(key)' is '\(value)'; only 'gelu' is supported")
            }
        }
        let config: ModelConfig
        switch architecture {
        case .bert:
            try activation("hidden_act")
            if let positions = json["position_embedding_type"] as? String, positions != "absolute" {
                throw EncoderError.invalidJSON(path: path, reason: "field 'position_embedding_type' is '\(positions)'; only 'absolute' is supported")
            }
            config = ModelConfig(
                architecture: .bert, vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
                layers: try int("num_hidden_layers"), heads: try int("num_attention_heads"),
                intermediateSize: try int("intermediate_size"), maxPositions: try int("max_position_embeddings"),
                typeVocabSize: try int("type_vocab_size"),
                layerNormEps: Float(json["layer_norm_eps"] as? Double ?? 1e-12)
            )
        case .distilBert:
            try activation("activation")
            config = ModelConfig(
                architecture: .distilBert, vocabSize: try int("vocab_size"), hiddenSize: try int("dim"),
                layers: try int("n_layers"), heads: try int("n_heads"), intermediateSize: try int("hidden_dim"),
                maxPositions: try int("max_position_embeddings"), typeVocabSize: 0, layerNormEps: 1e-12
            )
        }
        guard config.hiddenSize % config.heads == 0 else {
            throw EncoderError.invalidJSON(path: path, reason: "hidden size \(config.hiddenSize) is not divisible by \(config.heads) attention heads")
        }
        return config
    }
}
