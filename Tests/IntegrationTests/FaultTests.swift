import Foundation
import SparrowCoordinator
import SparrowCore
import SparrowStorage
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

    /// Test 8, a load: the coordinator killed (kill -9) at three points of a `ctl load` (upload,
    /// and later). After each restart the map is intact, every shard serves the build the map
    /// names, and while that is still the old one every acknowledged write is there; the load,
    /// run again, completes.
    @Test func killingTheCoordinatorMidLoadLeavesOneBuildAndTheLoadCompletesAfter() async throws {
        let records = GeneratedCorpus.documents(600, vocabulary: Moves.vocabulary, seed: 87)
        let cluster = try LocalTestCluster(records: records, shards: 2, replicas: 2, nodes: 2)
        defer { cluster.down() }
        let next = GeneratedCorpus.documents(20_000, vocabulary: Moves.vocabulary, seed: 88).map { TokenVectorRecord(id: "next-" + $0.id, vector: $0.vector) }
        try next.map(\.jsonLine).joined().write(toFile: cluster.data + "/next.jsonl", atomically: false, encoding: .utf8)
        let built = try LocalTestCluster.run(["build", "--vectors", cluster.data + "/next.jsonl", "--shards", "2", "--out", cluster.data + "/next"])
        try #require(built.status == 0, "\(built.text)")
        let nextID = try #require(try BuildLoadTests.lastBuildID(cluster.data + "/next"))
        let mapBefore = try ClusterMap.load(path: cluster.data + "/cluster/cluster.yaml")
        let acknowledged = Moves.Acknowledged(loaded: records)
        var outcomes: [String] = []
        for (round, delay) in [0.1, 0.2, 0.35].enumerated() {
            let client = try cluster.client()
            try await acknowledged.write(client, (0..<20).map { "load\(round)-\($0)" })
            await client.close()
            let load = Process()
            load.executableURL = URL(fileURLWithPath: LocalTestCluster.binary)
            load.arguments = ["ctl", "load", cluster.data + "/next", "--chunk-mb", "1"] + cluster.access
            load.standardOutput = FileHandle.nullDevice
            load.standardError = FileHandle.nullDevice
            try load.run()
            try await Task.sleep(for: .seconds(delay))
            kill(cluster.pids["coordinator"]!, SIGKILL)
            load.waitUntilExit()
            try cluster.restart("coordinator")
            let restarted = try cluster.client()
            defer { Task { await restarted.close() } }
            try await Moves.waitForFullCoverage(restarted)
            let map = try ClusterMap.load(path: cluster.data + "/cluster/cluster.yaml")
            #expect(map.nodes.map(\.address) == mapBefore.nodes.map(\.address) && map.shards.map(\.replicas) == mapBefore.shards.map(\.replicas), "the map changed: \(map)")
            for node in ["node-0", "node-1"] {
                let nodeClient = try cluster.nodeClient(node)
                let stats = try await nodeClient.call(ShardMethod.stats, Sparrow_V1_StatsRequest(), timeout: .seconds(5), as: Sparrow_V1_StatsResponse.self)
                await nodeClient.close()
                #expect(stats.shards.allSatisfy { $0.buildID == (map.build ?? $0.buildID) }, "\(node) serves \(stats.shards.map(\.buildID)), the map \(map.build ?? "-")")
            }
            if map.build == nextID {
                outcomes.append("activated before the kill")
                break
            }
            outcomes.append(load.terminationStatus == 0 ? "done" : "cut")
            try await acknowledged.verify(restarted)
        }
        let finished = try LocalTestCluster.run(["ctl", "load", cluster.data + "/next"] + cluster.access)
        #expect(finished.status == 0 || finished.text.contains("already"), "\(finished.text)")
        let client = try cluster.client()
        defer { Task { await client.close() } }
        let served = try await client.call(CoordinatorMethod.cluster, Sparrow_V1_ClusterRequest(), timeout: .seconds(5), as: Sparrow_V1_ClusterResponse.self)
        #expect(served.buildID == nextID)
        let hit = try await Moves.search(client, next[0].vector, k: 100)
        #expect(hit.hits.contains { $0.id == next[0].id } && hit.coverage.failed.isEmpty)
        print("| kill -9 of the coordinator during a `ctl load`, at 0.1, 0.2 and 0.35 s (`FaultTests`) | after each restart: the map as before, every shard on the build it names; "
              + "\(outcomes.joined(separator: ", ")); the load run again completed | nothing: every acknowledged write checked by id while the old build served |")
    }


    static func generation(_ cluster: LocalTestCluster, _ node: String, _ shard: String) throws -> String {
        let directory = cluster.data + "/cluster/\(node)/shards/\(shard)"
        let current = try String(contentsOfFile: directory + "/CURRENT", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return directory + "/" + current
    }

    /// Test 7: a torn record at the end of the write-ahead log (a write that was never
    /// acknowledged) is dropped on restart and every acknowledged write stays; flipped bytes in
    /// an SST file make the node refuse to open and name the file, or fail the reads that
    /// touch it: it never answers with wrong data.
    @Test func aTornLogTailAndAFlippedSSTByteNeverServeWrongData() async throws {
        let records = GeneratedCorpus.documents(3000, vocabulary: Moves.vocabulary, seed: 84)
        let cluster = try LocalTestCluster(records: records, shards: 1)
        defer { cluster.down() }
        let client = try cluster.client()
        defer { Task { await client.close() } }
        let acknowledged = Moves.Acknowledged(loaded: records)
        for i in 0..<30 { try await acknowledged.write(client, ["torn-\(i)"], delete: i % 10 == 9 ? ["doc-\(i)"] : []) }
        let queries = GeneratedCorpus.queries(40, vocabulary: Moves.vocabulary, seed: 85)
        var before: [[String]] = []
        for query in queries { before.append(try await Moves.search(client, query, k: 20).hits.map(\.id)) }

        kill(cluster.pids["node-0"]!, SIGKILL)
        try await Task.sleep(for: .milliseconds(200))
        let generation = try Self.generation(cluster, "node-0", "shard-0")
        let files = try FileManager.default.contentsOfDirectory(atPath: generation)
        let log = try #require(files.filter { $0.hasSuffix(".log") }.sorted().last, "no write-ahead log in \(files)")
        let handle = try #require(FileHandle(forWritingAtPath: generation + "/" + log))
        try handle.seekToEnd()
        var generator = SplitMix64(seed: 86)
        try handle.write(contentsOf: Data((0..<700).map { _ in UInt8.random(in: 0...255, using: &generator) }))
        try handle.close()
        try cluster.restart("node-0")
        try await Moves.waitForFullCoverage(client)
        try await Self.checkReplicas(cluster, acknowledged, shards: 1, nodes: ["node-0"])
        for (query, hits) in zip(queries, before) { #expect(try await Moves.search(client, query, k: 20).hits.map(\.id) == hits) }

        kill(cluster.pids["node-0"]!, SIGKILL)
        try await Task.sleep(for: .milliseconds(200))
        let tables = try FileManager.default.contentsOfDirectory(atPath: generation).filter { $0.hasSuffix(".sst") }
        let largest = try #require(tables.max { (try Self.size(generation + "/" + $0)) < (try Self.size(generation + "/" + $1)) })
        let path = generation + "/" + largest
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for eighth in 1..<8 { bytes[bytes.count * eighth / 8] ^= 0x5a }
        try bytes.write(to: URL(fileURLWithPath: path))
        let outcome: String
        do {
            try cluster.restart("node-0")
            var (answered, refused) = (0, [String]())
            for (query, hits) in zip(queries, before) {
                let response = try await Moves.search(client, query, k: 20)
                if let failure = response.coverage.failed.first {
                    refused.append(failure.reason)
                } else {
                    #expect(response.hits.map(\.id) == hits, "a search answered with other hits after the damage")
                    answered += 1
                }
            }
            #expect(refused.allSatisfy { $0.contains("corrupt") || $0.contains("Corruption") }, "\(refused.first ?? "")")
            outcome = "opened; \(answered) searches answered exactly, \(refused.count) failed naming the damage (\(refused.first?.prefix(120) ?? ""))"
        } catch let error as TestFailure {
            #expect("\(error)".contains(largest) || "\(error)".contains("corrupt"), "the refusal names neither the file nor the damage: \(error)")
            outcome = "refused to open, naming \(largest)"
        }
        print("| a torn record after the write-ahead log's last acknowledged write; 7 flipped bytes in an SST | torn tail dropped on restart; flipped bytes: \(outcome) | nothing: 30 acknowledged writes checked by id; no wrong answer |")
    }

    static func size(_ path: String) throws -> UInt64 {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
    }

    /// Whether this process may mount a tmpfs (root, with the capability), for the disk-full test.
    static let canMount: Bool = {
        guard geteuid() == 0 else { return false }
        let probe = NSTemporaryDirectory() + "sparrow-mount-probe-\(getpid())"
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard (try? LocalTestCluster.run(executable: "/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]).status) == 0 else { return false }
        _ = try? LocalTestCluster.run(executable: "/bin/umount", [probe])
        return true
    }()

    /// Test 6: the node's data directory on a small tmpfs, filled: writes are refused with an
    /// error naming the node and the cause, searches go on, and writes work again once space
    /// is freed; nothing acknowledged is lost.
    @Test(.enabled(if: canMount, "needs root and mount"))
    func aFullDiskRefusesWritesNamingTheNodeAndSearchesGoOn() async throws {
        let records = GeneratedCorpus.documents(500, vocabulary: Moves.vocabulary, seed: 87)
        let cluster = try LocalTestCluster(records: records, shards: 1)
        let directory = cluster.data + "/cluster/node-0"
        let saved = cluster.data + "/node-0.saved"
        defer {
            cluster.down()
            _ = try? LocalTestCluster.run(executable: "/bin/umount", [directory])
            try? FileManager.default.removeItem(atPath: cluster.data)
        }
        kill(cluster.pids["node-0"]!, SIGTERM)
        try await ReplicaRepairTests.waitUntil("node-0 exits") { kill(cluster.pids["node-0"]!, 0) != 0 }
        try FileManager.default.moveItem(atPath: directory, toPath: saved)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let mounted = try LocalTestCluster.run(executable: "/bin/mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", directory])
        #expect(mounted.status == 0, "\(mounted.text)")
        let copied = try LocalTestCluster.run(executable: "/bin/cp", ["-a", saved + "/.", directory])
        #expect(copied.status == 0, "\(copied.text)")
        try cluster.restart("node-0", options: ["--min-free-disk-mb", "8"])
        let client = try cluster.client()
        defer { Task { await client.close() } }
        try await Moves.waitForFullCoverage(client)
        let acknowledged = Moves.Acknowledged(loaded: records)
        try await acknowledged.write(client, ["full-0", "full-1"])

        var info = statvfs()
        #expect(statvfs(directory, &info) == 0)
        let filler = directory + "/filler"
        let fill = Int(info.f_bavail) * Int(info.f_frsize) - (4 << 20)
        #expect(FileManager.default.createFile(atPath: filler, contents: Data(count: fill)))
        var refusal = ""
        do {
            try await acknowledged.write(client, ["refused"])
            Issue.record("a write was acknowledged with 4 MiB free and 8 MiB kept")
        } catch {
            refusal = "\(error)"
            #expect(refusal.contains("node-0") && refusal.contains("free"), "\(refusal)")
        }
        for query in GeneratedCorpus.queries(20, vocabulary: Moves.vocabulary, seed: 88) {
            #expect(try await Moves.search(client, query, k: 10).coverage.shardsOk == 1)
        }
        try FileManager.default.removeItem(atPath: filler)
        try await acknowledged.write(client, ["full-2"])
        try await Self.checkReplicas(cluster, acknowledged, shards: 1, nodes: ["node-0"])
        print("| the node's disk full (a 48 MiB tmpfs, 4 MiB left, 8 MiB kept) | writes refused: \(refusal.prefix(160)); searches answered in full; writes acknowledged again once space was freed | nothing: every acknowledged write checked by id |")
    }
}
