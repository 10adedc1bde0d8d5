import SparrowCore

/// How a document vector is thinned after encoding.
public enum Pruning: Sendable, Equatable, CustomStringConvertible {
    /// Keep every non-zero weight.
    case none
    /// Drop weights below `ratio` × the document's largest weight (OpenSearch doc-v3 uses 0.1).
    case maxRatio(Float)
    /// Keep the `n` largest weights (ties broken by smaller token id).
    case topK(Int)
    /// Drop weights below an absolute threshold.
    case absValue(Float)

    /// Parses `none`, `max_ratio=R`, `top_k=N` or `abs_value=X`.
    public init(parsing text: String) throws {
        let expected = "none, max_ratio=R (0..1), top_k=N (N ≥ 1) or abs_value=X (X ≥ 0)"
        if text == "none" {
            self = .none
            return
        }
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw EncoderError.invalidOption(option: "--prune", value: text, expected: expected) }
        switch parts[0] {
        case "max_ratio":
            guard let r = Float(parts[1]), r >= 0, r <= 1 else { throw EncoderError.invalidOption(option: "--prune", value: text, expected: expected) }
            self = .maxRatio(r)
        case "top_k":
            guard let n = Int(parts[1]), n >= 1 else { throw EncoderError.invalidOption(option: "--prune", value: text, expected: expected) }
            self = .topK(n)
        case "abs_value":
            guard let x = Float(parts[1]), x >= 0 else { throw EncoderError.invalidOption(option: "--prune", value: text, expected: expected) }
            self = .absValue(x)
        default:
            throw EncoderError.invalidOption(option: "--prune", value: text, expected: expected)
        }
    }

    /// The canonical spelling, as recorded in manifests.
    public var description: String {
        switch self {
        case .none: "none"
        case let .maxRatio(r): "max_ratio=\(r)"
        case let .topK(n): "top_k=\(n)"
        case let .absValue(x): "abs_value=\(x)"
        }
    }

    /// Applies the rule to `vector`.
    public func apply(to vector: SparseVector) -> SparseVector {
        switch self {
        case .none:
            return vector
        case let .maxRatio(r):
            let threshold = (vector.weights.max() ?? 0) * r
            return vector.filter { _, w in w >= threshold }
        case let .absValue(x):
            return vector.filter { _, w in w >= x }
        case let .topK(n):
            guard vector.count > n else { return vector }
            let ranked = vector.entries.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            return SparseVector(pairs: Array(ranked.prefix(n)))
        }
    }
}
