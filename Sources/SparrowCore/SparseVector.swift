/// A sparse vector over a token vocabulary: parallel arrays of term ids and weights,
/// sorted by term id, with no duplicate ids and no zero weights.
public struct SparseVector: Sendable, Equatable {
    /// Term ids in ascending order.
    public private(set) var terms: [UInt32]
    /// `weights[i]` belongs to `terms[i]`.
    public private(set) var weights: [Float]

    /// An empty vector.
    public init() {
        terms = []
        weights = []
    }

    /// Builds a vector from unordered `(term, weight)` pairs.
    /// Zero weights are dropped; a repeated term keeps its largest weight.
    /// Takes an array, not any sequence: a generic initializer is not specialized across
    /// modules, and unspecialized it cost a shard about a microsecond per query term (measured).
    public init(pairs: [(UInt32, Float)]) {
        var sorted = pairs
        sorted.sort { $0.0 < $1.0 }
        var terms: [UInt32] = []
        var weights: [Float] = []
        terms.reserveCapacity(sorted.count)
        weights.reserveCapacity(sorted.count)
        for (term, weight) in sorted where weight != 0 {
            if let last = terms.last, last == term {
                weights[weights.count - 1] = max(weights[weights.count - 1], weight)
            } else {
                terms.append(term)
                weights.append(weight)
            }
        }
        self.terms = terms
        self.weights = weights
    }

    /// Takes arrays already in a vector's form: terms strictly ascending, weights non-zero.
    public init(sortedTerms terms: [UInt32], weights: [Float]) {
        precondition(terms.count == weights.count, "terms and weights differ in length")
        self.terms = terms
        self.weights = weights
    }

    /// Builds a vector from a dense array: index = term id; zeros are skipped.
    public init(dense: UnsafeBufferPointer<Float>) {
        var terms: [UInt32] = []
        var weights: [Float] = []
        for (index, weight) in dense.enumerated() where weight != 0 {
            terms.append(UInt32(index))
            weights.append(weight)
        }
        self.terms = terms
        self.weights = weights
    }

    /// Number of non-zero entries.
    public var count: Int { terms.count }

    /// True when the vector has no entries.
    public var isEmpty: Bool { terms.isEmpty }

    /// The weight of `term`, or 0 when it is absent.
    public subscript(term: UInt32) -> Float {
        var low = 0
        var high = terms.count
        while low < high {
            let mid = (low + high) / 2
            if terms[mid] < term { low = mid + 1 } else { high = mid }
        }
        return low < terms.count && terms[low] == term ? weights[low] : 0
    }

    /// The `(term, weight)` pairs in term order.
    public var entries: Zip2Sequence<[UInt32], [Float]> { zip(terms, weights) }

    /// Sum of the weights.
    public var l1: Float { weights.reduce(0, +) }

    /// Dot product with another sparse vector (merge of the two sorted id lists).
    public func dot(_ other: SparseVector) -> Float {
        var i = 0
        var j = 0
        var sum: Float = 0
        while i < terms.count && j < other.terms.count {
            let a = terms[i]
            let b = other.terms[j]
            if a == b {
                sum += weights[i] * other.weights[j]
                i += 1
                j += 1
            } else if a < b {
                i += 1
            } else {
                j += 1
            }
        }
        return sum
    }

    /// Keeps only the entries for which `keep(term, weight)` is true.
    public func filter(_ keep: (UInt32, Float) -> Bool) -> SparseVector {
        var result = SparseVector()
        for (term, weight) in entries where keep(term, weight) {
            result.terms.append(term)
            result.weights.append(weight)
        }
        return result
    }
}
