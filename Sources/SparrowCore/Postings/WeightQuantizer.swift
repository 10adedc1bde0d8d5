/// Maps positive document weights to 8 bits with one scale per index:
/// `weight ≈ Float(q) * scale`, `q` in 1...255 (a non-zero weight never becomes 0).
public struct WeightQuantizer: Sendable, Equatable {
    /// The weight of one quantization step.
    public let scale: Float

    /// A quantizer whose step is `maxWeight / 255`.
    public init(maxWeight: Float) {
        scale = maxWeight > 0 && maxWeight.isFinite ? maxWeight / 255 : 1
    }

    /// A quantizer with a known step (as read back from a manifest).
    public init(scale: Float) {
        self.scale = scale
    }

    /// The 8-bit code of a positive weight.
    @inline(__always)
    public func quantize(_ weight: Float) -> UInt8 {
        let q = (weight / scale).rounded()
        return q >= 255 ? 255 : q <= 1 ? 1 : UInt8(q)
    }

    /// The weight a code stands for.
    @inline(__always)
    public func dequantize(_ code: UInt8) -> Float { Float(code) * scale }
}

/// A query with integer weights, so every algorithm computes bit-identical scores whatever
/// the order it adds contributions in: `score = Σ weight[t] · code[t] · scale`.
public struct QuantizedQuery: Sendable, Equatable {
    /// Distinct term ids, ascending.
    public let terms: [UInt32]
    /// 16-bit query weights (stored wider for arithmetic).
    public let weights: [UInt64]
    /// Query step × document step: multiply an integer score by this to get the float score.
    public let scale: Float

    /// Quantizes `query` (non-positive weights dropped) for an index quantized by `documents`.
    /// The step is `maxWeight / 65535`, by default the query's own largest weight; an index that
    /// lacks some query tokens passes the whole query's largest weight, so that every shard
    /// quantizes the query alike and their integer scores compare exactly.
    public init(_ query: SparseVector, documents: WeightQuantizer, maxWeight: Float? = nil) {
        let positive = query.filter { _, w in w > 0 && w.isFinite }
        let maxWeight = maxWeight ?? positive.weights.max() ?? 1
        let step = Self.step(maxWeight: maxWeight)
        terms = positive.terms
        weights = positive.weights.map { UInt64(max(1, min(65535, ($0 / step).rounded()))) }
        scale = Self.scale(maxWeight: maxWeight, documents: documents)
    }

    /// The `scale` of a query whose step comes from `maxWeight`, without quantizing it.
    public static func scale(maxWeight: Float, documents: WeightQuantizer) -> Float {
        step(maxWeight: maxWeight) * documents.scale
    }

    private static func step(maxWeight: Float) -> Float { maxWeight / 65535 }
}
