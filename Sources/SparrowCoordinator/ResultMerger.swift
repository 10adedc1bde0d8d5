import SparrowCore
import SparrowWire

/// Merges the shards' top-k lists into the cluster's top k. When every shard reports the same
/// score scale (one quantization scale for the index), hits are ranked by their exact integer
/// scores; otherwise by float score. Equal scores rank by external id (`HitOrder`, the rule a
/// shard ranks its own segments by), so the ranking does not depend on how many shards the
/// documents were split into.
public enum ResultMerger {
    public struct ShardResult: Sendable {
        public var shard: String
        public var response: Sparrow_V1_SearchResponse

        public init(shard: String, response: Sparrow_V1_SearchResponse) {
            self.shard = shard
            self.response = response
        }
    }

    public static func merge(_ results: [ShardResult], k: Int) -> [Sparrow_V1_Hit] {
        let scales = Set(results.filter { !$0.response.hits.isEmpty }.map(\.response.scale))
        let exact = scales.count <= 1
        let hits = results.flatMap { result in
            result.response.hits.map { hit -> Sparrow_V1_Hit in
                var hit = hit
                hit.shard = result.shard
                return hit
            }
        }
        return Array(hits.sorted { a, b in
            if a.id == b.id && (exact ? a.rawScore == b.rawScore : a.score == b.score) {
                return a.shard != b.shard ? a.shard < b.shard : a.doc < b.doc
            }
            return exact ? HitOrder.precedes(a.rawScore, a.id, b.rawScore, b.id) : HitOrder.precedes(a.score, a.id, b.score, b.id)
        }.prefix(k))
    }
}
