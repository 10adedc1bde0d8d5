import Foundation
import SparrowCore
import SparrowWire

/// A query as the coordinator runs it, whichever route brought it (protobuf or HTTP/JSON):
/// made and checked once, at the route, against `QueryLimits`.
public struct SearchQuery: Sendable, Equatable {
    public enum Input: Sendable, Equatable {
        /// Text, encoded inference-free by the coordinator's query encoder.
        case text(String)
        /// The caller's own vector: token → weight.
        case vector([String: Float])
    }

    public var input: Input
    public var k: Int
    /// Stored field → the value a hit must have.
    public var filter: [String: String]
    public var explain: Bool
    public var mode: SearchMode
    /// The caller's deadline (nil: the coordinator's default).
    public var timeout: Duration?

    /// A query, or `invalidArgument` naming what is wrong.
    public init(
        _ input: Input, k: Int = 10, filter: [String: String] = [:], explain: Bool = false, mode: SearchMode = .exact, timeout: Duration? = nil
    ) throws {
        try QueryLimits.checkK(k)
        switch input {
        case .vector(let vector):
            try QueryLimits.checkTerms(vector.count, field: "vector")
            if let bad = vector.first(where: { !$0.value.isFinite || $0.value < 0 }) {
                throw RPCError.invalidArgument("vector: token '\(bad.key)' has weight \(bad.value); weights must be finite and non-negative")
            }
            guard !vector.isEmpty else { throw RPCError.invalidArgument("the query needs a non-empty text or vector") }
        case .text(let text):
            try Self.checkText(text)
            guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw RPCError.invalidArgument("the query needs a non-empty text or vector")
            }
        }
        if let problem = mode.problem { throw RPCError.invalidArgument("mode: \(problem)") }
        self.input = input
        self.k = k
        self.filter = filter
        self.explain = explain
        self.mode = mode
        self.timeout = timeout
    }

    static func checkText(_ text: String) throws {
        guard text.utf8.count <= QueryLimits.maxTextBytes else {
            throw RPCError.invalidArgument("text: \(text.utf8.count) bytes; at most \(QueryLimits.maxTextBytes) are allowed")
        }
    }
}

/// What a search found: the cluster's top k, merged from the shards that answered, and an
/// honest account of the shards that did not.
public struct SearchResult: Sendable {
    public struct RankedHit: Sendable, Equatable {
        public var shard: String
        public var hit: Hit

        public init(shard: String, hit: Hit) {
            self.shard = shard
            self.hit = hit
        }
    }

    /// A shard no replica answered for, and why (the last replica tried).
    public struct ShardFailure: Sendable, Equatable {
        public var shard: String
        public var node: String
        public var reason: String
    }

    public var hits: [RankedHit]
    /// The query vector that was searched.
    public var vector: [String: Float]
    public var shardsTotal: Int
    public var shardsOk: Int
    /// By shard id.
    public var failed: [ShardFailure]
    /// A shard was given up on because the deadline passed.
    public var timedOut: Bool
    public var approximateShards: Int
    public var took: Duration

    /// "exact", "approximate" (every shard that answered did so approximately) or "mixed".
    public var mode: String {
        approximateShards == 0 ? "exact" : approximateShards == shardsOk ? "approximate" : "mixed"
    }
}
