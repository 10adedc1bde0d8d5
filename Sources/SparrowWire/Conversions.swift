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

extension Sparrow_V1_SearchMode {
    /// The wire form of an engine mode.
    public init(_ mode: SearchMode) {
        self.init()
        switch mode {
        case .exact: break
        case .recall(let target):
            approximate = true
            targetRecall = target
        case .settings(let settings):
            approximate = true
            threshold = settings.threshold
            heapFactor = settings.heapFactor
        }
    }
}

extension Sparrow_V1_Hit {
    /// A hit as it goes on the wire, labelled with the shard that found it.
    public init(_ hit: Hit, shard: String) {
        self.init()
        id = hit.id
        self.shard = shard
        doc = hit.doc
        score = hit.score
        rawScore = hit.rawScore
        explanation = (hit.explanation ?? []).map(Sparrow_V1_Contribution.init)
    }
}

extension Hit {
    /// A hit from the wire (an empty explanation: none).
    public init(_ wire: Sparrow_V1_Hit) {
        self.init(
            id: wire.id, doc: wire.doc, score: wire.score, rawScore: wire.rawScore,
            explanation: wire.explanation.isEmpty ? nil : wire.explanation.map(TermContribution.init))
    }
}

extension Sparrow_V1_Contribution {
    public init(_ term: TermContribution) {
        self.init()
        token = term.token
        queryWeight = term.queryWeight
        documentWeight = term.documentWeight
    }
}

extension TermContribution {
    public init(_ wire: Sparrow_V1_Contribution) {
        self.init(token: wire.token, queryWeight: wire.queryWeight, documentWeight: wire.documentWeight)
    }
}
