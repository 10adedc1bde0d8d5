import SparrowCoordinator
import SparrowCore
import Testing

@Suite struct ResultMergerTests {
    func hit(_ id: String, doc: UInt32, raw: UInt64, scale: Float = 0.5) -> Hit {
        Hit(id: id, doc: doc, score: Float(raw) * scale, rawScore: raw)
    }

    func result(_ shard: String, _ hits: [Hit], scale: Float = 0.5) -> ResultMerger.ShardResult {
        .init(shard: shard, hits: hits, scale: scale)
    }

    @Test func ranksByScoreThenExternalID() {
        // Ties fall by id, not by shard or internal id: the same documents split into other
        // shards rank the same way.
        let merged = ResultMerger.merge([
            result("shard-1", [hit("x", doc: 0, raw: 90), hit("b", doc: 3, raw: 50)]),
            result("shard-0", [hit("c", doc: 1, raw: 50), hit("d", doc: 2, raw: 50), hit("v", doc: 0, raw: 10)]),
        ], k: 4)
        #expect(merged.map(\.hit.id) == ["x", "b", "c", "d"])
        #expect(merged.map(\.shard) == ["shard-1", "shard-1", "shard-0", "shard-0"])
    }

    @Test func exactIntegerScoresDecideBeyondFloatPrecision() {
        // 2^24 + 1 and 2^24 are the same Float: the integer scores still order them.
        let merged = ResultMerger.merge([
            result("shard-0", [hit("low", doc: 0, raw: 1 << 24, scale: 1)], scale: 1),
            result("shard-1", [hit("high", doc: 0, raw: (1 << 24) + 1, scale: 1)], scale: 1),
        ], k: 2)
        #expect(merged.map(\.hit.id) == ["high", "low"])
    }

    @Test func differentScalesFallBackToFloatScores() {
        let merged = ResultMerger.merge([
            result("shard-0", [hit("a", doc: 0, raw: 100, scale: 0.1)], scale: 0.1),
            result("shard-1", [hit("b", doc: 0, raw: 20, scale: 1)], scale: 1),
        ], k: 2)
        #expect(merged.map(\.hit.id) == ["b", "a"])
    }

    @Test func emptyAndShortInputs() {
        #expect(ResultMerger.merge([], k: 10).isEmpty)
        #expect(ResultMerger.merge([result("s", [hit("a", doc: 0, raw: 1)])], k: 10).map(\.hit.id) == ["a"])
    }

    /// The merge of the shards' lists equals sorting every hit by the rule and keeping k: lists
    /// with ties, one document on two shards, lists out of order, empty lists, every k.
    @Test(arguments: 0..<200) func mergingTheListsEqualsSortingEveryHit(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let scales: [Float] = random.next() % 4 == 0 ? [0.5, 0.25] : [0.5]
        let shards = (0..<(1 + Int(random.next() % 5))).map { index -> ResultMerger.ShardResult in
            let scale = scales[Int(random.next() % UInt64(scales.count))]
            var hits = (0..<Int(random.next() % 12)).map { n in
                hit("d\(random.next() % 30)", doc: UInt32(n), raw: random.next() % 6, scale: scale)
            }
            hits = Dictionary(hits.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }).values.map { $0 }
            hits.sort { Hit.ranks($0, before: $1, byRawScore: true) }
            if random.next() % 5 == 0 { hits.shuffle(using: &random) }
            return result("shard-\(index)", hits, scale: scale)
        }
        let exact = Set(shards.filter { !$0.hits.isEmpty }.map(\.scale)).count <= 1
        let every = shards.flatMap { shard in shard.hits.map { SearchResult.RankedHit(shard: shard.shard, hit: $0) } }
        let sorted = every.sorted { a, b in
            if a.hit.id == b.hit.id && (exact ? a.hit.rawScore == b.hit.rawScore : a.hit.score == b.hit.score) {
                return a.shard != b.shard ? a.shard < b.shard : a.hit.doc < b.hit.doc
            }
            return Hit.ranks(a.hit, before: b.hit, byRawScore: exact)
        }
        for k in [1, 3, 10, 100] {
            #expect(ResultMerger.merge(shards, k: k) == Array(sorted.prefix(k)), "seed \(seed), k \(k)")
        }
    }
}
