import Foundation
import SparrowCoordinator
import SparrowCore
import SparrowWire
import Testing

/// Processes killed under load (issue 17, fault tests 3 and 8), on 127.0.0.1: every loop is
/// bounded and stops by itself. Each test prints its row of the README's table.
@Suite(.serialized) struct FaultTests {
    typealias Moves = MoveShardTests

    /// Every acknowledged upsert is on every replica of its shard, every acknowledged delete
    /// gone from each, and the replicas' change logs end at the same place.
    static func checkReplicas(_ cluster: LocalTestCluster, _ acknowledged: Moves.Acknowledged, shards: Int, nodes: [String]) async throws {
        let upserted = acknowledged.upserted.withLock { $0 }
        let deleted = acknowledged.deleted.withLock { $0 }
        for node in nodes {
            let client = try cluster.nodeClient(node)
            defer { Task { await client.close() } }
            for id in upserted.keys.sorted() + deleted.sorted() {
                var get = Sparrow_V1_GetDocumentRequest()
                (get.shard, get.id) = (ShardPartitioner.shardID(ShardPartitioner.shard(of: id, count: shards)), id)
                let found = try await client.call(ShardMethod.getDocument, get, timeout: .seconds(5), as: Sparrow_V1_GetDocumentResponse.self).found
                #expect(found == !deleted.contains(id), "\(node): acknowledged \(deleted.contains(id) ? "delete" : "upsert") of \(id)")
            }
        }
        for shard in (0..<shards).map(ShardPartitioner.shardID) {
            var stats = Sparrow_V1_StatsRequest()
            stats.shard = shard
            var tails: [String: ChangeTail] = [:]
            for node in nodes {
                let client = try cluster.nodeClient(node)
                defer { Task { await client.close() } }
                let held = try await client.call(ShardMethod.stats, stats, timeout: .seconds(5), as: Sparrow_V1_StatsResponse.self).shards[0]
                tails[node] = ChangeTail(sequence: held.lastChange, write: held.lastWrite)
            }
            #expect(Set(tails.values).count == 1, "\(shard): the replicas' logs end at \(tails)")
        }
    }

    /// Test 3: a replica's node is killed five times while clients write and search; the other
    /// two keep every write acknowledged and every search whole, and each restart catches up.
    @Test func killingAReplicaFiveTimesLosesNoAcknowledgedWrite() async throws {
        let records = GeneratedCorpus.documents(1500, vocabulary: Moves.vocabulary, seed: 81)
        let nodes = ["node-0", "node-1", "node-2"]
        let cluster = try LocalTestCluster(records: records, shards: 2, replicas: 3, nodes: 3)
        defer { cluster.down() }
        let client = try cluster.client()
        defer { Task { await client.close() } }
        let load = Moves.Load(loaded: records)
        let tasks = load.run(client, queries: GeneratedCorpus.queries(200, vocabulary: Moves.vocabulary, seed: 82))
        var writesWhileDown = 0
        var catchUps: [Duration] = []
        for round in 0..<5 {
            let node = nodes[round % nodes.count]
            try await Task.sleep(for: .milliseconds(500))
            kill(cluster.pids[node]!, SIGKILL)
            let before = load.writes.load(ordering: .relaxed)
            try await Task.sleep(for: .seconds(2))
            writesWhileDown += load.writes.load(ordering: .relaxed) - before
            try cluster.restart(node)
            let restarted = ContinuousClock.now
            try await ReplicaRepairTests.waitUntil("\(node) is in sync again (round \(round))") {
                try await ReplicaRepairTests.staleReplicas(client).values.allSatisfy(\.isEmpty)
            }
            catchUps.append(ContinuousClock.now - restarted)
        }
        load.stop.store(true, ordering: .relaxed)
        for task in tasks { await task.value }
        let problems = load.problems.withLock { $0 }
        #expect(problems.isEmpty, "\(problems.count) failed writes or searches: \(problems.prefix(5))")
        #expect(writesWhileDown >= 5, "writes acknowledged while a replica was down: \(writesWhileDown)")
        try await Self.checkReplicas(cluster, load.acknowledged, shards: 2, nodes: nodes)
        try await load.acknowledged.verify(client)
        let acknowledged = load.acknowledged.upserted.withLock { $0.count }
        print("| kill -9 of a replica's node, 5 times, under writes and searches (3 replicas) | \(load.writes.load(ordering: .relaxed)) writes acknowledged "
              + "(\(writesWhileDown) while a node was down), \(load.queries.load(ordering: .relaxed)) searches, \(problems.count) failed or partial; "
              + "caught up \(catchUps.map { String(format: "%.1f s", Double($0.milliseconds) / 1000) }.joined(separator: ", ")) after restart | \(acknowledged) upserts checked by id on every replica: none lost |")
    }

    /// Test 8 (writes): the coordinator is killed in the middle of writes, several times; after
    /// each restart the map is intact and every acknowledged write is there. A write that some
    /// replicas applied and that was never acknowledged makes them disagree: the restarted owner
    /// finds out before its first write, and the stale copies catch up.
    @Test func killingTheCoordinatorMidWriteLosesNoAcknowledgedWrite() async throws {
        let records = GeneratedCorpus.documents(600, vocabulary: Moves.vocabulary, seed: 83)
        let nodes = ["node-0", "node-1"]
        let cluster = try LocalTestCluster(records: records, shards: 2, replicas: 2, nodes: 2)
        defer { cluster.down() }
        let mapBefore = try String(contentsOfFile: cluster.data + "/cluster/cluster.yaml", encoding: .utf8)
        let acknowledged = Moves.Acknowledged(loaded: records)
        var attempted = 0
        for round in 0..<3 {
            let client = try cluster.client()
            // Writes until one fails: the coordinator is gone.
            let writer = Task {
                for i in 0..<10_000 {
                    do {
                        try await acknowledged.write(client, (0..<20).map { "r\(round)-\(i)-\($0)" })
                    } catch {
                        return i + 1
                    }
                }
                return 10_000
            }
            try await Task.sleep(for: .milliseconds(800))
            kill(cluster.pids["coordinator"]!, SIGKILL)
            attempted += await writer.value
            await client.close()
            try cluster.restart("coordinator")
        }
        let client = try cluster.client()
        defer { Task { await client.close() } }
        try await Moves.waitForFullCoverage(client)
        _ = try await Moves.write(client, upserts: ReplicaRepairTests.documents("after", 5))
        try await ReplicaRepairTests.waitUntil("every replica is in sync") {
            try await ReplicaRepairTests.staleReplicas(client).values.allSatisfy(\.isEmpty)
        }
        let map = try String(contentsOfFile: cluster.data + "/cluster/cluster.yaml", encoding: .utf8)
        #expect(try ClusterMap.parse(map, path: "cluster.yaml").shards == ClusterMap.parse(mapBefore, path: "before").shards)
        try await Self.checkReplicas(cluster, acknowledged, shards: 2, nodes: nodes)
        try await acknowledged.verify(client)
        print("| kill -9 of the coordinator during writes, 3 times | \(acknowledged.upserted.withLock { $0.count }) upserts acknowledged of \(attempted * 20) sent; "
              + "the map reloads intact | every acknowledged upsert checked by id on every replica: none lost |")
    }
}
