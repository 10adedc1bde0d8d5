import Foundation
import SparrowCore
import SparrowStorage
import SparrowWire
import Testing

/// Writes while a replica is lost, and the catch-up that brings it back (issue 17), on real
/// processes: a shard's writes go on while one in-sync replica takes them, and a replica that
/// missed some serves again only once it holds exactly what the others hold.
@Suite(.serialized) struct ReplicaRepairTests {
    typealias Moves = MoveShardTests

    static func documents(_ prefix: String, _ count: Int) -> [Sparrow_V1_Document] {
        (0..<count).map { Moves.document("\(prefix)-\($0)", token: "tok-\(prefix)") }
    }

    /// Every shard's replicas, and the stale ones, as the coordinator's map says.
    static func staleReplicas(_ client: RPCClient) async throws -> [String: [String]] {
        let map = try await Moves.cluster(client)
        return Dictionary(uniqueKeysWithValues: map.shards.map { ($0.shard, $0.replicas.filter(\.stale).map(\.node)) })
    }

    static func waitUntil(_ what: String, within seconds: Int = 60, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("not within \(seconds) s: \(what)")
    }

    /// The shard's tail and the ids a direct search of `token` finds on `node`.
    static func replicaView(_ cluster: LocalTestCluster, _ node: String, _ shard: String, token: String) async throws -> (tail: ChangeTail, ids: [String]) {
        let client = try cluster.nodeClient(node)
        defer { Task { await client.close() } }
        var stats = Sparrow_V1_StatsRequest()
        stats.shard = shard
        let held = try await client.call(ShardMethod.stats, stats, timeout: .seconds(10), as: Sparrow_V1_StatsResponse.self).shards[0]
        var search = Sparrow_V1_SearchRequest()
        search.shard = shard
        search.k = 1000
        search.query = [Sparrow_V1_TermWeight](["\(token)": 1])
        let hits = try await client.call(ShardMethod.search, search, timeout: .seconds(10), as: Sparrow_V1_SearchResponse.self).hits
        return (ChangeTail(sequence: held.lastChange, write: held.lastWrite), hits.map(\.id).sorted())
    }

    @Test func writesGoOnWithAReplicaDownAndItCatchesUpBeforeServingAgain() async throws {
        let records = GeneratedCorpus.documents(400, vocabulary: Moves.vocabulary, seed: 61)
        // Two shards, each on both nodes: with two replicas a majority rule would stop writes.
        let cluster = try LocalTestCluster(records: records, shards: 2, replicas: 2, nodes: 2)
        defer { cluster.down() }
        let client = try cluster.client()
        defer { Task { await client.close() } }
        _ = try await Moves.write(client, upserts: Self.documents("before", 10))
        #expect(try await Self.staleReplicas(client).values.allSatisfy(\.isEmpty))

        kill(cluster.pids["node-1"]!, SIGKILL)
        let deleted = records.prefix(6).map(\.id)
        for batch in 0..<4 {
            let response = try await Moves.write(client, upserts: Self.documents("down\(batch)", 10), deletes: batch == 0 ? deleted : [])
            #expect(response.upserted == 10)
        }
        #expect(try await Self.staleReplicas(client) == ["shard-0": ["node-1"], "shard-1": ["node-1"]])
        for batch in 0..<4 {
            let found = try await Moves.search(client, ["tok-down\(batch)": 1], k: 100)
            #expect(found.coverage.failed.isEmpty && found.coverage.shardsOk == 2, "\(found.coverage)")
            #expect(found.hits.count == 10)
        }

        try cluster.restart("node-1")
        try await Self.waitUntil("node-1 is in sync again") { try await Self.staleReplicas(client).values.allSatisfy(\.isEmpty) }
        for shard in ["shard-0", "shard-1"] {
            for token in ["tok-before", "tok-down0", "tok-down3"] {
                let (kept, caughtUp) = (try await Self.replicaView(cluster, "node-0", shard, token: token), try await Self.replicaView(cluster, "node-1", shard, token: token))
                #expect(caughtUp.tail == kept.tail && caughtUp.ids == kept.ids, "\(shard) \(token): node-1 \(caughtUp), node-0 \(kept)")
            }
            let node = try cluster.nodeClient("node-1")
            for id in deleted {
                var get = Sparrow_V1_GetDocumentRequest()
                (get.shard, get.id) = (shard, id)
                #expect(try await node.call(ShardMethod.getDocument, get, timeout: .seconds(5), as: Sparrow_V1_GetDocumentResponse.self).found == false)
            }
            await node.close()
        }
        // Back in the in-sync set, it takes writes again.
        _ = try await Moves.write(client, upserts: Self.documents("after", 10))
        #expect(try await Self.staleReplicas(client).values.allSatisfy(\.isEmpty))
        for shard in ["shard-0", "shard-1"] {
            let (a, b) = (try await Self.replicaView(cluster, "node-0", shard, token: "tok-after"), try await Self.replicaView(cluster, "node-1", shard, token: "tok-after"))
            #expect(a.tail == b.tail && a.ids == b.ids)
        }
    }

    /// A replica that applied a write its peers never acknowledged (here: sent to it alone) is
    /// out of step at the next write, marked stale, found not to match, and copied afresh:
    /// the stray document never reaches a search.
    @Test func aReplicaHoldingAWriteThePeersLackIsCopiedAfresh() async throws {
        let records = GeneratedCorpus.documents(200, vocabulary: Moves.vocabulary, seed: 62)
        let cluster = try LocalTestCluster(records: records, shards: 1, replicas: 2, nodes: 2)
        defer { cluster.down() }
        let client = try cluster.client()
        defer { Task { await client.close() } }
        _ = try await Moves.write(client, upserts: Self.documents("first", 3))

        let node = try cluster.nodeClient("node-1")
        var stray = Sparrow_V1_UpsertRequest()
        stray.shard = "shard-0"
        stray.epoch = try await Moves.cluster(client).epoch
        stray.documents = [Moves.document("stray", token: "tok-stray")]
        _ = try await node.call(ShardMethod.upsert, stray, timeout: .seconds(5), as: Sparrow_V1_UpsertResponse.self)
        await node.close()

        #expect(try await Moves.write(client, upserts: Self.documents("next", 3)).upserted == 3)
        try await Self.waitUntil("node-1 is copied afresh and in sync") {
            let map = try await Moves.cluster(client)
            return map.moves.isEmpty && map.shards[0].replicas.map(\.node).sorted() == ["node-0", "node-1"] && !map.shards[0].replicas.contains(where: \.stale)
        }
        let (kept, copied) = (try await Self.replicaView(cluster, "node-0", "shard-0", token: "tok-next"), try await Self.replicaView(cluster, "node-1", "shard-0", token: "tok-next"))
        #expect(copied.tail == kept.tail && copied.ids == kept.ids && copied.ids.count == 3)
        #expect(try await Self.replicaView(cluster, "node-1", "shard-0", token: "tok-stray").ids.isEmpty)
        for _ in 0..<4 { #expect(try await Moves.search(client, ["tok-stray": 1], k: 10).hits.isEmpty) }
    }

    /// A move aborted while its target is down leaves a copy there that the map does not
    /// give it: once the node is back, `ctl status` shows it, and the owner drops it after
    /// the grace period.
    @Test func anAbortWhileTheTargetIsDownLeavesAnOrphanTheOwnerDrops() async throws {
        let records = GeneratedCorpus.documents(300, vocabulary: Moves.vocabulary, seed: 63)
        let cluster = try LocalTestCluster(records: records, shards: 2, nodes: 2)
        defer { cluster.down() }
        kill(cluster.pids["coordinator"]!, SIGTERM)
        try await Task.sleep(for: .milliseconds(500))
        try cluster.restart("coordinator", options: ["--orphan-grace-seconds", "3"])
        _ = try Moves().ctl(cluster, ["move-shard", "shard-0", "--from", "node-0", "--to", "node-1", "--until", "copy"])
        #expect(try await Moves.hosted(cluster, "node-1").sorted() == ["shard-0", "shard-1"])
        kill(cluster.pids["node-1"]!, SIGKILL)
        let client = try cluster.client()
        defer { Task { await client.close() } }
        try await Self.waitUntil("node-1 is marked down") { try await Moves.cluster(client).nodes.first { $0.node == "node-1" }?.state == "down" }
        _ = try Moves().ctl(cluster, ["move-shard", "shard-0", "--abort"])
        try cluster.restart("node-1")
        try await Self.waitUntil("the orphan shows in ctl status") {
            try Moves().ctl(cluster, ["status"]).contains("orphan copy: shard-0 on node-1")
        }
        try await Self.waitUntil("the owner drops it") { try await Moves.hosted(cluster, "node-1") == ["shard-1"] }
        #expect(try await Moves.cluster(client).orphans.isEmpty)
        #expect(try await Moves.search(client, ["t1": 1], k: 10).coverage.shardsOk == 2)
    }
}
