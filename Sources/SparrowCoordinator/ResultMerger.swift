import SparrowCore

/// Merges the shards' top-k lists into the cluster's top k. When every shard reports the same
/// score scale (one quantization scale for the index), hits are ranked by their exact integer
/// scores; otherwise by float scores. Equal scores rank by external id (`HitOrder`, the rule a
/// shard ranks its own segments by), so the ranking does not depend on how many shards the
/// documents were split into.
public enum ResultMerger {
    /// One shard's answer.
    public struct ShardResult: Sendable {
        public var shard: String
        public var hits: [Hit]
        /// The float value of one integer score unit on that shard.
        public var scale: Float
        /// Whether the shard answered approximately.
        public var approximate: Bool

        public init(shard: String, hits: [Hit], scale: Float, approximate: Bool = false) {
            self.shard = shard
            self.hits = hits
            self.scale = scale
            self.approximate = approximate
        }
    }

    public static func merge(_ results: [ShardResult], k: Int) -> [SearchResult.RankedHit] {
        let exact = Set(results.filter { !$0.hits.isEmpty }.map(\.scale)).count <= 1
        let hits = results.flatMap { result in result.hits.map { SearchResult.RankedHit(shard: result.shard, hit: $0) } }
        return Array(hits.sorted { a, b in
            if a.hit.id == b.hit.id && (exact ? a.hit.rawScore == b.hit.rawScore : a.hit.score == b.hit.score) {
                return a.shard != b.shard ? a.shard < b.shard : a.hit.doc < b.hit.doc
            }
            return Hit.ranks(a.hit, before: b.hit, byRawScore: exact)
        }.prefix(k))
    }
}
