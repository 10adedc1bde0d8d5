import Foundation

/// The SPLADE squashing applied to max-pooled logits. Both are monotonic, so Sparrow
/// max-pools the raw logits first and squashes only one value per vocabulary entry.
public enum Activation: String, Sendable, CaseIterable {
    /// `log(1 + relu(x))`: SPLADE, OpenSearch doc-v1/v2.
    case log1pRelu = "log1p_relu"
    /// `log(1 + log(1 + relu(x)))`: OpenSearch doc-v3.
    case log1pLog1pRelu = "log1p_log1p_relu"

    /// Applies the activation to one value.
    @inline(__always)
    public func apply(_ x: Float) -> Float {
        let once = log1pf(max(x, 0))
        return self == .log1pRelu ? once : log1pf(once)
    }

    /// Reads the activation from a sentence-transformers folder's
    /// `document_1_SpladePooling/config.json` (`"activation_function": "relu"` → `log1p_relu`,
    /// `"log1p_relu"` → `log1p_log1p_relu`); `nil` when the folder has none.
    public static func fromSentenceTransformers(modelDirectory: String) throws -> Activation? {
        let path = (modelDirectory as NSString).appendingPathComponent("document_1_SpladePooling/config.json")
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let json = try JSONFile.object(at: path)
        if let strategy = json["pooling_strategy"] as? String, strategy != "max" {
            throw EncoderError.invalidJSON(path: path, reason: "pooling_strategy is '\(strategy)'; only 'max' is supported")
        }
        switch json["activation_function"] as? String {
        case "relu": return .log1pRelu
        case "log1p_relu": return .log1pLog1pRelu
        case let other:
            throw EncoderError.invalidJSON(path: path, reason: "activation_function is '\(other ?? "missing")'; expected 'relu' or 'log1p_relu'")
        }
    }
}
