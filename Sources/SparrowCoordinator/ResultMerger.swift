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

    /// The top `k` of every shard's hits. Each shard's list comes in rank order (a shard ranks
    /// its hits as this does), so the lists are merged head to head, k steps of one comparison per
    /// shard, and only the hits kept are copied; a list out of order is sorted first. One
    /// document found on two shards (a copy left by a move) with one score ranks by shard, then
    /// internal id.
    public static func merge(_ results: [ShardResult], k: Int) -> [SearchResult.RankedHit] {
        let scale = results.first { !$0.hits.isEmpty }?.scale
        let byRawScore = results.allSatisfy { $0.hits.isEmpty || $0.scale == scale }
        let lists = results.map { result in
            result.hits.indices.dropFirst().allSatisfy { !Hit.ranks(result.hits[$0], before: result.hits[$0 - 1], byRawScore: byRawScore) }
                ? result.hits : result.hits.sorted { Hit.ranks($0, before: $1, byRawScore: byRawScore) }
        }
        var next = [Int](repeating: 0, count: lists.count)
        var merged: [SearchResult.RankedHit] = []
        merged.reserveCapacity(min(k, lists.reduce(0) { $0 + $1.count }))
        while merged.count < k {
            var best: Int?
            for shard in lists.indices where next[shard] < lists[shard].count {
                guard let current = best else {
                    best = shard
                    continue
                }
                let candidate = lists[shard][next[shard]]
                let leader = lists[current][next[current]]
                if Hit.ranks(candidate, before: leader, byRawScore: byRawScore)
                    || (!Hit.ranks(leader, before: candidate, byRawScore: byRawScore) && (results[shard].shard, candidate.doc) < (results[current].shard, leader.doc)) {
                    best = shard
                }
            }
            guard let shard = best else { break }
            merged.append(SearchResult.RankedHit(shard: results[shard].shard, hit: lists[shard][next[shard]]))
            next[shard] += 1
        }
        return merged
    }
}
