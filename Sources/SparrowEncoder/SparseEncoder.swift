import Foundation
import SparrowCore

/// The document-side sparse encoder: WordPiece → masked-LM → max-pool → activation →
/// special tokens zeroed → pruning. Safe to call from several threads at once.
public final class SparseEncoder: Sendable {
    public let tokenizer: WordPieceTokenizer
    public let model: MaskedLanguageModel
    public let activation: Activation
    public let pruning: Pruning
    /// The folder's `idf.json`, when it has one.
    public let idf: IDFTable?
    /// Identifies the weights, tokenizer and settings; equal fingerprints encode identically.
    public let fingerprint: String

    /// Loads a Hugging Face model folder. The activation defaults to what a
    /// sentence-transformers `document_1_SpladePooling` says, else `log1p_relu`.
    public init(modelDirectory: String, activation: Activation? = nil, pruning: Pruning = .none) throws {
        guard FileManager.default.fileExists(atPath: modelDirectory) else {
            throw EncoderError.missingFile(path: modelDirectory, reason: "model folder does not exist")
        }
        tokenizer = try WordPieceTokenizer.load(modelDirectory: modelDirectory)
        // The configuration is checked against the tokenizer before any weight is read: a
        // sequence longer than the position table would stop a build midway.
        let configPath = (modelDirectory as NSString).appendingPathComponent("config.json")
        let config = try ModelConfig.load(path: configPath)
        guard tokenizer.maxLength <= config.maxPositions else {
            throw EncoderError.invalidJSON(
                path: configPath,
                reason: "max_position_embeddings is \(config.maxPositions), below the tokenizer's maximum sequence length \(tokenizer.maxLength): "
                    + "lower the tokenizer's model_max_length (or truncation.max_length) to match")
        }
        guard config.vocabSize == tokenizer.vocabulary.count else {
            throw EncoderError.invalidTokenizer(
                path: modelDirectory,
                reason: "tokenizer has \(tokenizer.vocabulary.count) tokens but config.json says vocab_size \(config.vocabSize)")
        }
        model = try MaskedLanguageModel(modelDirectory: modelDirectory, config: config)
        self.activation = try activation ?? Activation.fromSentenceTransformers(modelDirectory: modelDirectory) ?? .log1pRelu
        self.pruning = pruning
        let idfPath = (modelDirectory as NSString).appendingPathComponent("idf.json")
        idf = FileManager.default.fileExists(atPath: idfPath) ? try IDFTable.load(path: idfPath, vocabulary: tokenizer.vocabulary) : nil
        fingerprint = try Fingerprint.modelFolder(modelDirectory, settings: "\(self.activation.rawValue);\(pruning)")
    }

    /// The activated max-pooled weights of each text, every vocabulary entry, special tokens
    /// included (the raw form the reference fixtures hold).
    public func pooledWeights(_ texts: [String]) -> [[Float]] {
        pooledWeights(tokens: texts.map(tokenizer.encode))
    }

    /// `pooledWeights` of texts already tokenized with `tokenizer.encode`.
    public func pooledWeights(tokens: [[Int32]]) -> [[Float]] {
        var pooled = model.maxPooledLogits(tokens)
        for index in pooled.indices {
            pooled[index].withUnsafeMutableBufferPointer { values in
                for j in values.indices { values[j] = activation.apply(values[j]) }
            }
        }
        return pooled
    }

    /// The product's document vectors: special tokens zeroed, then pruned.
    public func encode(_ texts: [String]) -> [SparseVector] {
        encode(tokens: texts.map(tokenizer.encode))
    }

    /// `encode` of texts already tokenized with `tokenizer.encode`.
    public func encode(tokens: [[Int32]]) -> [SparseVector] {
        pooledWeights(tokens: tokens).map { dense in
            var dense = dense
            for id in tokenizer.special.all { dense[Int(id)] = 0 }
            return pruning.apply(to: dense.withUnsafeBufferPointer { SparseVector(dense: $0) })
        }
    }

    /// A one-line summary for logs and manifests.
    public var summary: String {
        let c = model.config
        return "\(c.architecture.rawValue) hidden=\(c.hiddenSize) layers=\(c.layers) vocab=\(c.vocabSize) "
            + "activation=\(activation.rawValue) prune=\(pruning) fingerprint=\(fingerprint)"
    }
}
