import Foundation
import SparrowClient
import SparrowCore
import SparrowStorage
import SparrowWire
import Synchronization
import Testing

/// Shard moves, rebalancing and draining on real processes, driven by `sparrow ctl` as an
/// operator would, while clients query and write through the coordinator.
@Suite(.serialized) struct MoveShardTests {
    static let vocabulary = 300

    // MARK: - Helpers

    func ctl(_ cluster: LocalTestCluster, _ arguments: [String]) throws -> String {
        let output = try LocalTestCluster.run(["ctl"] + arguments + cluster.access)
        guard output.status == 0 else { throw TestFailure("ctl \(arguments.joined(separator: " ")) failed: \(output.text)") }
        return output.text
    }

    static func document(_ id: String, token: String) -> Sparrow_V1_Document {
        var document = Sparrow_V1_Document()
        document.id = id
        document.vector = .init([token: 1, "t\(id.utf8.count % 40)": 0.5])
        return document
    }

    static func write(_ client: RPCClient, upserts: [Sparrow_V1_Document] = [], deletes: [String] = []) async throws -> Sparrow_V1_WriteResponse {
        var request = Sparrow_V1_WriteRequest()
        request.upserts = upserts
        request.deletes = deletes
        return try await ClusterClient(client).write(request, timeout: .seconds(30))
    }

    static func search(_ client: RPCClient, _ query: [String: Float], k: Int) async throws -> Sparrow_V1_QueryResponse {
        var request = Sparrow_V1_QueryRequest()
        request.vector = .init(query)
        request.k = UInt32(k)
        request.timeoutMs = 5000
        return try await ClusterClient(client).search(request)
    }

    static func cluster(_ client: RPCClient) async throws -> Sparrow_V1_ClusterResponse {
        try await ClusterClient(client).cluster()
    }

    static func replicas(_ map: Sparrow_V1_ClusterResponse, _ shard: String) -> [String] {
        map.shards.first { $0.shard == shard }?.replicas.map(\.node) ?? []
    }

    /// Shards a node hosts, as it reports them.
    static func hosted(_ cluster: LocalTestCluster, _ node: String) async throws -> [String] {
        let client = try cluster.nodeClient(node)
        defer { Task { await client.close() } }
        return try await client.call(ShardMethod.stats, Sparrow_V1_StatsRequest(), timeout: .seconds(10), as: Sparrow_V1_StatsResponse.self).shards.map(\.shard)
    }

    /// Waits until the coordinator answers with every shard covered.
    static func waitForFullCoverage(_ client: RPCClient) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let response = try? await search(client, ["t1": 1], k: 1), response.coverage.failed.isEmpty { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the cluster did not reach full coverage within 30 s")
    }

    /// What was acknowledged: every upserted id findable by its own token, every deleted one gone.
    final class Acknowledged: Sendable {
        let upserted = Mutex<[String: String]>([:])   // id → its unique token
        let deleted = Mutex<Set<String>>([])
        /// A token of each document loaded at the start, to look a deleted one up by.
        let loadedToken: [String: String]

        init(loaded records: [TokenVectorRecord]) {
            loadedToken = Dictionary(uniqueKeysWithValues: records.map { ($0.id, $0.vector.keys.min()!) })
        }

        func verify(_ client: RPCClient) async throws {
            for (id, token) in upserted.withLock({ $0 }) {
                let response = try await search(client, [token: 1], k: 5)
                let found = response.hits.contains { $0.id == id }
                #expect(found == !deleted.withLock { $0.contains(id) }, "acknowledged write of \(id) (token \(token))")
                #expect(response.coverage.failed.isEmpty)
            }
            for id in deleted.withLock({ $0 }) where upserted.withLock({ $0[id] }) == nil {
                let token = try #require(loadedToken[id], "deleted \(id) is neither loaded nor written")
                let response = try await search(client, [token: 1], k: 10_000)
                #expect(!response.hits.contains { $0.id == id }, "deleted \(id) still answers")
            }
        }

        func write(_ client: RPCClient, _ ids: [String], delete: [String] = []) async throws {
            let documents = ids.map { MoveShardTests.document($0, token: "w-\($0)") }
            let response = try await MoveShardTests.write(client, upserts: documents, deletes: delete)
            #expect(response.upserted == UInt32(ids.count))
            upserted.withLock { for id in ids { $0[id] = "w-\(id)" } }
            deleted.withLock { $0.formUnion(delete) }
        }
    }

    /// A client querying and another writing through the coordinator until stopped; every
    /// query must cover every shard and list each document once.
    final class Load: Sendable {
        let stop = Atomic<Bool>(false)
        let paused = Atomic<Bool>(false)
        let writing = Atomic<Bool>(false)
        let queries = Atomic<Int>(0)
        let writes = Atomic<Int>(0)
        let problems = Mutex<[String]>([])
        let acknowledged: Acknowledged

        init(loaded records: [TokenVectorRecord]) {
            acknowledged = Acknowledged(loaded: records)
        }

        /// Queries through `client` and, unless `readOnly`, writes through it.
        func run(_ client: RPCClient, queries: [[String: Float]], readOnly: Bool = false) -> [Task<Void, Never>] {
            let reader = Task {
                var n = 0
                while !self.stop.load(ordering: .relaxed) {
                    do {
                        let response = try await MoveShardTests.search(client, queries[n % queries.count], k: 50)
                        if !response.coverage.failed.isEmpty || response.coverage.shardsOk != response.coverage.shardsTotal {
                            self.problems.withLock { $0.append("query \(n): \(response.coverage.shardsOk)/\(response.coverage.shardsTotal) shards, " + response.coverage.failed.map { "\($0.shard)@\($0.node): \($0.reason)" }.joined(separator: "; ")) }
                        }
                        if Set(response.hits.map(\.id)).count != response.hits.count {
                            self.problems.withLock { $0.append("query \(n): a document twice in \(response.hits.map(\.id))") }
                        }
                    } catch {
                        self.problems.withLock { $0.append("query \(n): \(error)") }
                    }
                    n += 1
                    self.queries.add(1, ordering: .relaxed)
                }
            }
            guard !readOnly else { return [reader] }
            let writer = Task {
                var i = 0
                while !self.stop.load(ordering: .relaxed) {
                    if self.paused.load(ordering: .relaxed) {
                        try? await Task.sleep(for: .milliseconds(2))
                        continue
                    }
                    self.writing.store(true, ordering: .sequentiallyConsistent)
                    if !self.paused.load(ordering: .sequentiallyConsistent) {
                        do {
                            try await self.acknowledged.write(client, ["live-\(i)"], delete: i % 5 == 4 ? ["live-\(i - 2)", "doc-\(i % 1000)"] : [])
                            self.writes.add(1, ordering: .relaxed)
                        } catch {
                            self.problems.withLock { $0.append("write \(i): \(error)") }
                        }
                        i += 1
                    }
                    self.writing.store(false, ordering: .sequentiallyConsistent)
                }
            }
            return [reader, writer]
        }

        /// Holds the writer between two writes.
        func pause() async throws {
            paused.store(true, ordering: .sequentiallyConsistent)
            while writing.load(ordering: .sequentiallyConsistent) { try await Task.sleep(for: .milliseconds(1)) }
        }

        func resume() { paused.store(false, ordering: .sequentiallyConsistent) }
    }

    // MARK: - Tests

    /// Queries go to the coordinator that owns the map and to one that follows it.
    @Test func moveShardUnderQueriesAndWrites() async throws {
        let records = GeneratedCorpus.documents(3000, vocabulary: Self.vocabulary, seed: 21)
        let cluster = try LocalTestCluster(records: records, shards: 2, nodes: 3)
        defer { cluster.down() }
        let client = try cluster.client()
        let follower = try cluster.client(of: Endpoint(parsing: cluster.startFollower()))
        defer { Task { await client.close(); await follower.close() } }
        let load = Load(loaded: records)
        let queries = GeneratedCorpus.queries(200, vocabulary: Self.vocabulary, seed: 22)
        let tasks = load.run(client, queries: queries) + load.run(follower, queries: queries, readOnly: true)

        // Copy (throttled, so that it spans many queries and writes) and catch up under load.
        _ = try ctl(cluster, ["move-shard", "shard-0", "--from", "node-0", "--to", "node-2", "--until", "catch-up", "--bytes-per-second", "150000"])
        // With the writer held, the last changes reach the target: it answers as the source does.
        try await load.pause()
        _ = try ctl(cluster, ["move-shard", "shard-0", "--from", "node-0", "--to", "node-2", "--until", "catch-up"])
        let (source, target) = (try cluster.nodeClient("node-0"), try cluster.nodeClient("node-2"))
        defer { Task { await source.close(); await target.close() } }
        let probes = GeneratedCorpus.queries(60, vocabulary: Self.vocabulary, seed: 23) + (0..<20).map { ["w-live-\($0)": 1, "t3": 0.2] }
        for query in probes {
            var request = Sparrow_V1_SearchRequest()
            request.shard = "shard-0"
            request.k = 30
            request.query = .init(query)
            let expected = try await source.call(ShardMethod.search, request, timeout: .seconds(10), as: Sparrow_V1_SearchResponse.self)
            let actual = try await target.call(ShardMethod.search, request, timeout: .seconds(10), as: Sparrow_V1_SearchResponse.self)
            #expect(actual.hits.map(\.id) == expected.hits.map(\.id) && actual.hits.map(\.rawScore) == expected.hits.map(\.rawScore), "query \(query)")
        }
        load.resume()
        // The switch and the drop, still under load.
        let writesBefore = load.writes.load(ordering: .relaxed)
        _ = try ctl(cluster, ["move-shard", "shard-0", "--from", "node-0", "--to", "node-2"])
        try await Task.sleep(for: .milliseconds(300))
        load.stop.store(true, ordering: .relaxed)
        for task in tasks { await task.value }

        #expect(load.problems.withLock { $0 }.isEmpty, "\(load.problems.withLock { $0.prefix(5) })")
        #expect(load.queries.load(ordering: .relaxed) > 100)
        #expect(load.writes.load(ordering: .relaxed) > writesBefore)
        let map = try await Self.cluster(client)
        #expect(Self.replicas(map, "shard-0") == ["node-2"] && map.moves.isEmpty)
        #expect(try await !Self.hosted(cluster, "node-0").contains("shard-0"))
        try await load.acknowledged.verify(client)
        // The follower has the owner's map, and refuses writes.
        let followed = try await Self.cluster(follower)
        #expect(followed.epoch == map.epoch && Self.replicas(followed, "shard-0") == ["node-2"] && followed.owner == cluster.rpcAddress)
        await #expect(throws: RPCError.self) { try await Self.write(follower, deletes: ["doc-1"]) }
        print("move under load: \(load.queries.load(ordering: .relaxed)) queries, \(load.writes.load(ordering: .relaxed)) acknowledged writes, epoch \(map.epoch)")
    }

    /// A slow copy shows its progress in the tool that asked for it (bytes, rate, ETA) and in
    /// `ctl status`, from the coordinator that copies.
    @Test func aThrottledMoveShowsItsProgress() async throws {
        let records = GeneratedCorpus.documents(1500, vocabulary: Self.vocabulary, seed: 24)
        let cluster = try LocalTestCluster(records: records, shards: 1, nodes: 2)
        defer { cluster.down() }
        let access = cluster.access
        let move = Task {
            try LocalTestCluster.run(["ctl", "move-shard", "shard-0", "--from", "node-0", "--to", "node-1", "--until", "copy", "--bytes-per-second", "20000"] + access)
        }
        var status = ""
        for _ in 0..<50 where !status.contains("copied ") {
            try await Task.sleep(for: .milliseconds(100))
            status = (try? ctl(cluster, ["status"])) ?? ""
        }
        #expect(status.contains("phase copy, copied ") && status.contains(" MB"), "\(status)")
        let copied = try await move.value.text
        let progress = copied.split(separator: "\n").filter { $0.hasPrefix("move shard-0 node-0 → node-1, copy: ") }
        #expect(progress.contains { $0.contains(" MB, ") && $0.contains(" MB/s, ETA ") }, "\(copied)")
        _ = try ctl(cluster, ["move-shard", "shard-0", "--abort"])
    }

    /// SIGKILL the source, the target and the coordinator at each phase of a move; afterwards
    /// one copy serves, nothing acknowledged is lost, and the move resumes (or rolls back).
    @Test(arguments: ["copy", "catch-up", "switch"]) func killEveryPartyOfAMoveAtEachPhase(phase: String) async throws {
        let records = GeneratedCorpus.documents(1500, vocabulary: Self.vocabulary, seed: 31)
        let cluster = try LocalTestCluster(records: records, shards: 2, nodes: 3)
        defer { cluster.down() }
        var client = try cluster.client()
        let acknowledged = Acknowledged(loaded: records)
        try await acknowledged.write(client, (0..<20).map { "before-\($0)" }, delete: ["doc-1", "doc-2", "doc-3"])

        var mover: Process?
        if phase == "copy" {
            // Killed in the middle of a throttled copy.
            let process = Process()
            process.executableURL = URL(fileURLWithPath: LocalTestCluster.binary)
            process.arguments = ["ctl", "move-shard", "shard-0", "--from", "node-0", "--to", "node-2", "--bytes-per-second", "20000"] + cluster.access
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            mover = process
            let incoming = cluster.data + "/cluster/node-2/incoming"
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline && Self.bytes(under: incoming) < 20_000 { usleep(20_000) }
            #expect(Self.bytes(under: incoming) >= 20_000, "the copy did not start")
        } else {
            _ = try ctl(cluster, ["move-shard", "shard-0", "--from", "node-0", "--to", "node-2", "--until", phase])
            try await acknowledged.write(client, (0..<20).map { "after-\(phase)-\($0)" }, delete: ["before-0"])
        }
        for name in ["node-0", "node-2", "coordinator"] { kill(cluster.pids[name]!, SIGKILL) }
        mover?.waitUntilExit()
        await client.close()
        for name in ["node-0", "node-2", "coordinator"] { try cluster.restart(name) }
        client = try cluster.client()
        defer { Task { [client] in await client.close() } }
        try await Self.waitForFullCoverage(client)

        // Exactly one copy serves: the map names the source until the switch, the target after it.
        var map = try await Self.cluster(client)
        #expect(Self.replicas(map, "shard-0") == (phase == "switch" ? ["node-2"] : ["node-0"]))
        #expect(map.moves.map(\.phase) == [phase == "switch" ? "switched" : phase])
        try await acknowledged.verify(client)
        try await acknowledged.write(client, (0..<10).map { "restarted-\(phase)-\($0)" })

        if phase == "catch-up" {
            _ = try ctl(cluster, ["move-shard", "shard-0", "--abort"])
            map = try await Self.cluster(client)
            #expect(Self.replicas(map, "shard-0") == ["node-0"] && map.moves.isEmpty)
            #expect(try await !Self.hosted(cluster, "node-2").contains("shard-0"))
        } else {
            _ = try ctl(cluster, ["move-shard", "shard-0", "--from", "node-0", "--to", "node-2"])
            map = try await Self.cluster(client)
            #expect(Self.replicas(map, "shard-0") == ["node-2"] && map.moves.isEmpty)
            #expect(try await !Self.hosted(cluster, "node-0").contains("shard-0"))
        }
        try await acknowledged.verify(client)
    }

    static func bytes(under directory: String) -> Int {
        let files = FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []
        return files.reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.size] as? Int) ?? 0)
        }
    }

    /// Add a fourth node to 3 nodes × 12 shards, rebalance, drain it, remove it, change a
    /// shard's replica count: the same answers throughout.
    @Test func rebalanceDrainAndReplicas() async throws {
        let records = GeneratedCorpus.documents(2400, vocabulary: Self.vocabulary, seed: 41)
        let cluster = try LocalTestCluster(records: records, shards: 12, nodes: 3)
        defer { cluster.down() }
        let client = try cluster.client()
        defer { Task { await client.close() } }
        let queries = GeneratedCorpus.queries(60, vocabulary: Self.vocabulary, seed: 42)
        func answers() async throws -> [[String]] {
            var all: [[String]] = []
            for query in queries {
                let response = try await Self.search(client, query, k: 20)
                #expect(response.coverage.failed.isEmpty && response.coverage.shardsOk == 12)
                all.append(response.hits.map { "\($0.id) \($0.rawScore)" })
            }
            return all
        }
        func shardsPerNode() async throws -> [String: Int] {
            try await Self.cluster(client).shards.flatMap(\.replicas).reduce(into: [:]) { $0[$1.node, default: 0] += 1 }
        }
        let before = try await answers()

        let address = try cluster.startNode("node-3")
        _ = try ctl(cluster, ["add-node", address])
        #expect(try await shardsPerNode() == ["node-0": 4, "node-1": 4, "node-2": 4])
        let plan = try ctl(cluster, ["rebalance", "--dry-run"])
        #expect(plan.components(separatedBy: "would move").count - 1 == 3, "\(plan)")
        #expect(try await shardsPerNode() == ["node-0": 4, "node-1": 4, "node-2": 4])
        _ = try ctl(cluster, ["rebalance"])
        #expect(try await shardsPerNode() == ["node-0": 3, "node-1": 3, "node-2": 3, "node-3": 3])
        #expect(try await answers() == before)
        #expect(try await Self.hosted(cluster, "node-3").count == 3)

        _ = try ctl(cluster, ["set-replicas", "shard-5", "2"])
        let map = try await Self.cluster(client)
        #expect(Set(Self.replicas(map, "shard-5")).count == 2)
        #expect(try await answers() == before)
        _ = try ctl(cluster, ["set-replicas", "shard-5", "1"])
        #expect(Self.replicas(try await Self.cluster(client), "shard-5").count == 1)

        _ = try ctl(cluster, ["drain-node", "node-3"])
        let drained = try await Self.cluster(client)
        #expect(drained.shards.allSatisfy { !$0.replicas.map(\.node).contains("node-3") })
        #expect(drained.nodes.first { $0.node == "node-3" }?.state == "draining")
        #expect(try await Self.hosted(cluster, "node-3").isEmpty)
        #expect(try await answers() == before)
        _ = try ctl(cluster, ["remove-node", "node-3"])
        #expect(try await Self.cluster(client).nodes.map(\.node) == ["node-0", "node-1", "node-2"])
        #expect(try await answers() == before)
    }
}
