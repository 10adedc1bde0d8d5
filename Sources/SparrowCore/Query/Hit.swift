/// A search hit: the document's external id and its internal id on the shard that found it,
/// its score, and optionally each matched token's contribution. Shards answer with hits and
/// the coordinator merges them, both ranking by `HitOrder`.
public struct Hit: Sendable, Equatable {
    public var id: String
    public var doc: UInt32
    public var score: Float
    /// The integer score (`score` = `rawScore` × the query's scale): exact, comparable across
    /// shards that share a quantization scale.
    public var rawScore: UInt64
    public var explanation: [TermContribution]?

    public init(id: String, doc: UInt32, score: Float, rawScore: UInt64, explanation: [TermContribution]? = nil) {
        self.id = id
        self.doc = doc
        self.score = score
        self.rawScore = rawScore
        self.explanation = explanation
    }

    /// Whether `a` ranks before `b` (`HitOrder`): by the exact integer scores when both come
    /// from one quantization scale (`byRawScore`), else by float scores.
    @inline(__always)
    public static func ranks(_ a: Hit, before b: Hit, byRawScore: Bool) -> Bool {
        byRawScore ? HitOrder.precedes(a.rawScore, a.id, b.rawScore, b.id) : HitOrder.precedes(a.score, a.id, b.score, b.id)
    }
}

/// One matched token of an explained hit.
public struct TermContribution: Sendable, Equatable {
    public var token: String
    public var queryWeight: Float
    public var documentWeight: Float
    public var product: Float { queryWeight * documentWeight }

    public init(token: String, queryWeight: Float, documentWeight: Float) {
        self.token = token
        self.queryWeight = queryWeight
        self.documentWeight = documentWeight
    }
}
