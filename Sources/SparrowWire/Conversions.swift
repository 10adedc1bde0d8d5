import SparrowCore

/// Conversions between wire messages and the plain values the engine works with.
extension Array where Element == Sparrow_V1_TermWeight {
    /// Token → weight; a token listed twice keeps its larger weight.
    public var weights: [String: Float] {
        var result: [String: Float] = [:]
        for term in self { result[term.token] = Swift.max(result[term.token] ?? -.infinity, term.weight) }
        return result
    }

    /// Terms sorted by weight (largest first, then token) for stable output.
    public init(_ weights: [String: Float]) {
        self = weights.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { token, weight in
            var term = Sparrow_V1_TermWeight()
            term.token = token
            term.weight = weight
            return term
        }
    }
}

extension Array where Element == Sparrow_V1_Field {
    /// Field name → value; the last of a repeated name wins.
    public var values: [String: String] {
        Dictionary(map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
    }

    public init(_ values: [String: String]) {
        self = values.sorted { $0.key < $1.key }.map { name, value in
            var field = Sparrow_V1_Field()
            field.name = name
            field.value = value
            return field
        }
    }
}

extension Sparrow_V1_SearchMode {
    /// The engine's mode for this wire mode; an approximate mode's values must be in range
    /// (`invalidArgument` naming `field` otherwise).
    public func checked(field: String) throws -> SearchMode {
        guard approximate else { return .exact }
        let mode: SearchMode = targetRecall != 0 ? .recall(targetRecall) : .settings(.init(threshold: threshold, heapFactor: heapFactor))
        if let problem = mode.problem { throw RPCError.invalidArgument("\(field): \(problem)") }
        return mode
    }
}
