import Foundation
import Logging
import SparrowCoordinator
import SparrowEtcd
import SparrowStorage
import SparrowWire
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The cluster map on etcd with real processes: etcd from Debian's etcd-server, coordinators
/// that elect an owner by lease, take over when it dies, and refuse changes without a quorum.
@Suite(.serialized) struct ControlPlaneTests {
    static let vocabulary = 300

    /// Clients of several coordinators, and whichever of them owns the map as far as they say.
    final class Coordinators: Sendable {
        let addresses: [String]
        let clients: [RPCClient]
        let target = Atomic<Int>(0)

        init(_ cluster: LocalTestCluster, _ addresses: [String]) throws {
            self.addresses = addresses
            clients = try addresses.map { try cluster.client(of: Endpoint(parsing: $0)) }
        }

        func client(_ address: String) -> RPCClient { clients[addresses.firstIndex(of: address)!] }

        /// Runs `body` on the owner: a follower's refusal names it; any other failure (the owner
        /// is gone, none is elected yet) tries the next coordinator. Gives up after `within`.
        func onOwner<T: Sendable>(within: Duration = .seconds(20), _ body: (RPCClient) async throws -> T) async throws -> T {
            let deadline = ContinuousClock.now + within
            while true {
                let index = target.load(ordering: .relaxed)
                do {
                    return try await body(clients[index])
                } catch let error as RPCError where error.code == .failedPrecondition && error.message.contains("which owns the cluster map") {
                    guard ContinuousClock.now < deadline else { throw error }
                    let owner = error.message.split(separator: " ").dropFirst(3).first.map { String($0.dropLast()) }
                    target.store(owner.flatMap { addresses.firstIndex(of: $0) } ?? (index + 1) % clients.count, ordering: .relaxed)
                } catch {
                    guard ContinuousClock.now < deadline else { throw error }
                    target.store((index + 1) % clients.count, ordering: .relaxed)
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }

        /// The owner's address, once one coordinator takes a write (a delete of an id no one has).
        func owner(within: Duration = .seconds(20)) async throws -> String {
            try await onOwner(within: within) { client in
                var request = Sparrow_V1_WriteRequest()
                request.deletes = ["no-such-document"]
                // Briefly: a coordinator that is frozen or cut off must not hold the search up.
                _ = try await client.call(CoordinatorMethod.write, request, timeout: .seconds(1), as: Sparrow_V1_WriteResponse.self)
                return addresses[clients.firstIndex { $0 === client }!]
            }
        }

        func close() async { for client in clients { await client.close() } }
    }

    static func etcdLogger() -> Logger { Logger(label: "test.etcd") }

    /// What the load tasks share.
    final class LoadState: Sendable {
        let stop = Atomic<Bool>(false)
        let searches = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        let lastAcknowledged = Mutex(ContinuousClock.now)
    }

    /// Three coordinators on one etcd: the first registered owns the map, the others learn its
    /// changes by watch within 100 ms and refuse writes naming it; when it is killed, the next
    /// one owns the map within the lease's TTL + 2 s.
    @Test func coordinatorsElectOneOwnerFollowItByWatchAndTakeOver() async throws {
        let etcd = try EtcdTestCluster(members: 1)
        defer { etcd.down() }
        let records = GeneratedCorpus.documents(600, vocabulary: Self.vocabulary, seed: 41)
        let cluster = try LocalTestCluster(records: records, shards: 2, replicas: 2, nodes: 2)
        defer { cluster.down() }
        cluster.kill("coordinator")
        let ttl = 2
        var addresses: [String] = []
        for name in ["coordinator-a", "coordinator-b", "coordinator-c"] {
            addresses.append(try cluster.startCoordinator(name, etcd: etcd.endpoints, clusterName: "elect", ttl: ttl))
        }
        let coordinators = try Coordinators(cluster, addresses)
        defer { Task { await coordinators.close() } }
        #expect(try await coordinators.owner() == addresses[0])

        // A follower refuses a write, naming the owner.
        do {
            _ = try await MoveShardTests.write(coordinators.clients[1], deletes: ["doc-1"])
            Issue.record("a follower took a write")
        } catch let error as RPCError {
            #expect(error.code == .failedPrecondition && error.message.contains(addresses[0]), "\(error)")
        }

        // Map changes reach the followers by watch.
        let spare = try cluster.startNode("node-9")
        var lags: [Duration] = []
        var lastEpoch: UInt64 = 0
        for round in 0..<6 {
            let changed: Sparrow_V1_MapChangeResponse
            let started = ContinuousClock.now
            if round % 2 == 0 {
                var add = Sparrow_V1_AddNodeRequest()
                add.node = "node-9"
                add.address = spare
                changed = try await coordinators.clients[0].call(CoordinatorMethod.addNode, add, timeout: .seconds(10))
            } else {
                var remove = Sparrow_V1_RemoveNodeRequest()
                remove.node = "node-9"
                changed = try await coordinators.clients[0].call(CoordinatorMethod.removeNode, remove, timeout: .seconds(10))
            }
            let answered = ContinuousClock.now
            for follower in coordinators.clients.dropFirst() {
                while try await MoveShardTests.cluster(follower).epoch < changed.epoch {
                    guard ContinuousClock.now - started < .seconds(5) else { throw TestFailure("a follower did not learn epoch \(changed.epoch)") }
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            lags.append(ContinuousClock.now - answered)
            lastEpoch = changed.epoch
        }
        lags.sort()
        print("followers learnt map changes in \(lags.map { "\($0.milliseconds) ms" }) after the owner answered")
        #expect(lags[lags.count / 2] <= .milliseconds(100), "median lag \(lags[lags.count / 2])")

        // The owner dies: the next coordinator owns the map within the TTL + 2 s.
        cluster.kill("coordinator-a")
        let killed = ContinuousClock.now
        coordinators.target.store(1, ordering: .relaxed)
        let successor = try await coordinators.owner()
        let takeover = ContinuousClock.now - killed
        print("new owner \(successor) after \(takeover.milliseconds) ms (lease TTL \(ttl) s)")
        #expect(successor == addresses[1])
        #expect(takeover <= .seconds(ttl + 2))
        // Its epoch is above every one the old owner used.
        let map = try await MoveShardTests.cluster(coordinators.clients[1])
        #expect(map.epoch > lastEpoch)
        let follower = try await MoveShardTests.cluster(coordinators.clients[2])
        #expect(follower.owner == successor)
    }

    /// kill -9 of the owner under 32 query clients on the other coordinators, a writer and a
    /// move in flight: no search fails, a new owner comes within the TTL + 2 s, writes resume
    /// with none acknowledged lost, and the new owner finishes the move from its recorded phase.
    @Test func killingTheOwnerUnderLoadLosesNoWriteAndTheMoveResumes() async throws {
        let etcd = try EtcdTestCluster(members: 1)
        defer { etcd.down() }
        let records = GeneratedCorpus.documents(2000, vocabulary: Self.vocabulary, seed: 42)
        let cluster = try LocalTestCluster(records: records, shards: 2, nodes: 3)
        defer { cluster.down() }
        cluster.kill("coordinator")
        let ttl = 2
        var addresses: [String] = []
        for name in ["coordinator-a", "coordinator-b", "coordinator-c"] {
            // A fixed bound on searches: this test counts failures of 32 callers, not admission's refusals.
            addresses.append(try cluster.startCoordinator(name, etcd: etcd.endpoints, clusterName: "takeover", ttl: ttl, options: ["--search-concurrency", "1024"]))
        }
        let coordinators = try Coordinators(cluster, addresses)
        defer { Task { await coordinators.close() } }
        #expect(try await coordinators.owner() == addresses[0])

        // 32 query clients on the followers.
        let state = LoadState()
        let queries = GeneratedCorpus.queries(100, vocabulary: Self.vocabulary, seed: 43)
        let readers = (0..<32).map { reader in
            Task {
                let client = coordinators.clients[1 + reader % 2]
                var n = reader
                while !state.stop.load(ordering: .relaxed) {
                    do {
                        let response = try await MoveShardTests.search(client, queries[n % queries.count], k: 20)
                        if response.coverage.shardsOk != response.coverage.shardsTotal { state.failures.withLock { $0.append("coverage \(response.coverage)") } }
                    } catch {
                        state.failures.withLock { $0.append("\(error)") }
                    }
                    n += 32
                    state.searches.add(1, ordering: .relaxed)
                }
            }
        }
        // A writer that follows the owner.
        let acknowledged = MoveShardTests.Acknowledged(loaded: records)
        let writer = Task {
            var i = 0
            while !state.stop.load(ordering: .relaxed) {
                if (try? await coordinators.onOwner(within: .seconds(30), { try await acknowledged.write($0, ["k-\(i)"]) })) != nil {
                    state.lastAcknowledged.withLock { $0 = .now }
                }
                i += 1
            }
        }

        // A throttled move, killed with the owner in its copy phase.
        let mover = Process()
        mover.executableURL = URL(fileURLWithPath: LocalTestCluster.binary)
        mover.arguments = ["ctl", "move-shard", "shard-0", "--from", "node-0", "--to", "node-2", "--bytes-per-second", "30000", "--coordinator", addresses[0]]
            + cluster.access.dropFirst(2)
        mover.standardOutput = FileHandle.nullDevice
        mover.standardError = FileHandle.nullDevice
        try mover.run()
        let deadline = ContinuousClock.now + .seconds(20)
        while try await MoveShardTests.cluster(coordinators.clients[1]).moves.first?.phase != "copy" {
            guard ContinuousClock.now < deadline else { throw TestFailure("the move was not seen in its copy phase") }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(500))
        cluster.kill("coordinator-a")
        let killed = ContinuousClock.now
        mover.waitUntilExit()

        // Writes resume on a new owner within the TTL + 2 s.
        while state.lastAcknowledged.withLock({ $0 }) < killed {
            guard ContinuousClock.now - killed < .seconds(30) else { throw TestFailure("no write was acknowledged after the owner died") }
            try await Task.sleep(for: .milliseconds(10))
        }
        let resumed = state.lastAcknowledged.withLock { $0 } - killed
        let owner = addresses[coordinators.target.load(ordering: .relaxed)]
        print("writes resumed on \(owner) \(resumed.milliseconds) ms after the owner was killed (lease TTL \(ttl) s)")
        #expect(resumed <= .seconds(ttl + 2))
        #expect(owner != addresses[0])

        // The new owner finishes the move.
        let ownerClient = coordinators.client(owner)
        let moveDeadline = ContinuousClock.now + .seconds(90)
        var map = try await MoveShardTests.cluster(ownerClient)
        while !map.moves.isEmpty || MoveShardTests.replicas(map, "shard-0") != ["node-2"] {
            guard ContinuousClock.now < moveDeadline else { throw TestFailure("the move did not finish under the new owner: \(map.moves)") }
            try await Task.sleep(for: .milliseconds(200))
            map = try await MoveShardTests.cluster(ownerClient)
        }
        try await Task.sleep(for: .milliseconds(300))
        state.stop.store(true, ordering: .relaxed)
        for reader in readers { await reader.value }
        await writer.value

        let failed = state.failures.withLock { $0 }
        #expect(failed.count == 0, "\(failed.prefix(5))")
        #expect(state.searches.load(ordering: .relaxed) > 200)
        #expect(acknowledged.upserted.withLock { $0.count } > 5)
        try await acknowledged.verify(ownerClient)
        print("takeover under load: \(state.searches.load(ordering: .relaxed)) searches, \(acknowledged.upserted.withLock { $0.count }) acknowledged writes, epoch \(map.epoch)")
    }

    /// An owner frozen past its lease (as if cut off) stops acting as owner once it runs again,
    /// before it has heard from etcd; another has taken over; and it follows that one.
    @Test func anOwnerFrozenPastItsLeaseStepsDownAndFollows() async throws {
        let etcd = try EtcdTestCluster(members: 1)
        defer { etcd.down() }
        let records = GeneratedCorpus.documents(300, vocabulary: Self.vocabulary, seed: 44)
        let cluster = try LocalTestCluster(records: records, shards: 1, nodes: 1)
        defer { cluster.down() }
        cluster.kill("coordinator")
        let addresses = [
            try cluster.startCoordinator("coordinator-a", etcd: etcd.endpoints, clusterName: "frozen", ttl: 2),
            try cluster.startCoordinator("coordinator-b", etcd: etcd.endpoints, clusterName: "frozen", ttl: 2),
        ]
        let coordinators = try Coordinators(cluster, addresses)
        defer { Task { await coordinators.close() } }
        #expect(try await coordinators.owner() == addresses[0])
        let a = cluster.pids["coordinator-a"]!
        Glibc.kill(a, SIGSTOP)
        defer { Glibc.kill(a, SIGCONT) }
        coordinators.target.store(1, ordering: .relaxed)
        #expect(try await coordinators.owner() == addresses[1])
        Glibc.kill(a, SIGCONT)
        // At once: no write through the old owner.
        await #expect(throws: RPCError.self) { _ = try await MoveShardTests.write(coordinators.clients[0], deletes: ["doc-1"]) }
        // Then it follows the new owner, with its map.
        let deadline = ContinuousClock.now + .seconds(10)
        while try await MoveShardTests.cluster(coordinators.clients[0]).owner != addresses[1] {
            guard ContinuousClock.now < deadline else { throw TestFailure("the old owner does not follow the new one") }
            try await Task.sleep(for: .milliseconds(50))
        }
        let (old, new) = (try await MoveShardTests.cluster(coordinators.clients[0]), try await MoveShardTests.cluster(coordinators.clients[1]))
        #expect(old.epoch == new.epoch)
    }

    /// etcd's leader renews leases by itself, and one cut off from the other members goes on
    /// renewing until its quorum check deposes it (one to two election timeouts, 5–10 s here),
    /// while the others may elect a new leader and let the lease run out. A renewal made by
    /// such a leader must not count: the client refuses it, so that an owner coordinator cut off
    /// with etcd's leader stops acting as owner within its lease TTL of the cut.
    @Test func aRenewalByAnEtcdLeaderWithoutItsQuorumDoesNotCount() async throws {
        let etcd = try EtcdTestCluster(members: 3, electionTimeoutMs: 5000)
        defer { etcd.down() }
        var leader: Int?
        let deadline = ContinuousClock.now + .seconds(20)
        let probe = try EtcdClient(endpoints: [etcd.endpoint(0)], logger: Self.etcdLogger())
        while leader == nil {
            for index in 0..<3 {
                let status = try? await probe.status(of: etcd.endpoint(index))
                if let id = status?.header?.member_id, status?.leader == id { leader = index }
            }
            guard ContinuousClock.now < deadline else { throw TestFailure("etcd elected no leader") }
            if leader == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        await probe.shutdown()
        let onLeader = try EtcdClient(endpoints: [etcd.endpoint(leader!)], logger: Self.etcdLogger())
        defer { Task { await onLeader.shutdown() } }
        let lease = try await onLeader.grantLease(ttl: 30)
        #expect(try await onLeader.keepAlive(lease: lease.id, timeout: .seconds(1)) > 0)

        let others = (0..<3).filter { $0 != leader }
        for index in others { etcd.freeze(index) }
        defer { for index in others { etcd.freeze(index, false) } }
        let cut = ContinuousClock.now
        await #expect(throws: EtcdError.self, "a renewal by a leader without its quorum counted") {
            _ = try await onLeader.keepAlive(lease: lease.id, timeout: .seconds(1))
        }
        #expect(ContinuousClock.now - cut < .seconds(5), "the refusal came after the leader could have stepped down")

        for index in others { etcd.freeze(index, false) }
        let back = ContinuousClock.now + .seconds(20)
        while (try? await onLeader.keepAlive(lease: lease.id, timeout: .seconds(1))) == nil {
            guard ContinuousClock.now < back else { throw TestFailure("renewals do not resume with the quorum back") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// A deposed owner's change fails in etcd and overwrites nothing, even while it still
    /// believes it owns the map (the transaction requires its key at its create revision).
    @Test func aDeposedOwnersSaveFailsAndOverwritesNothing() async throws {
        let etcd = try EtcdTestCluster(members: 1)
        defer { etcd.down() }
        let client = try EtcdClient(endpoints: [etcd.endpoint(0)], logger: Self.etcdLogger())
        defer { Task { await client.shutdown() } }
        let store = try EtcdMapStore(client: client, cluster: "deposed")
        var map = ClusterMap(epoch: 7, nodes: [.init(id: "n1", address: "127.0.0.1:1")], shards: [.init(id: "shard-0", replicas: ["n1"])])
        #expect(try await store.create(map))
        #expect(try await !store.create(map))
        store.mapRevision = try #require(try await store.load()).revision

        let lease = try await client.grantLease(ttl: 30)
        let key = store.keys.coordinator(lease: lease.id)
        let revision = try await client.txn(.init(if: [.created(key, at: 0)], then: [.put(key, Data("{}".utf8), lease: lease.id)])).header!.revision!.value
        store.elect { $0.registered(.init(key: key, createRevision: revision, value: Data()), sentAt: .now, ttl: .seconds(30)) }
        map.epoch = 8
        try await store.save(map)
        #expect(try await store.load()?.map.epoch == 8)

        // Its key goes (the lease revoked, as when it expires); it has not heard yet.
        try await client.revoke(lease: lease.id)
        #expect(store.role == .owner(.init(key: key, createRevision: revision, value: Data())))
        map.epoch = 9
        await #expect(throws: CoordinatorError.mapConflict(location: store.location, revision: store.mapRevision)) { try await store.save(map) }
        #expect(try await store.load()?.map.epoch == 8)
    }

    /// etcd with TLS and client certificates (`--client-cert-auth`), its certificates from
    /// `sparrow certs`: a coordinator with its certificate owns the map through it; a client
    /// without a certificate, or in the clear, gets nothing.
    @Test func etcdOverTLSServesOnlyClientsWithACertificate() async throws {
        let records = GeneratedCorpus.documents(300, vocabulary: Self.vocabulary, seed: 47)
        let cluster = try LocalTestCluster(records: records, shards: 1, nodes: 1)
        defer { cluster.down() }
        let security = try #require(cluster.security)
        let issued = try LocalTestCluster.run(["certs", "issue", "--role", "etcd", "--id", "m0", "--host", "127.0.0.1", "--ca", security.directory])
        #expect(issued.status == 0, "\(issued.text)")
        let etcd = try EtcdTestCluster(members: 1, tls: (security.ca, "\(security.directory)/etcd-m0.pem", "\(security.directory)/etcd-m0.key"))
        defer { etcd.down() }
        cluster.kill("coordinator")
        let credentials = ["--etcd-ca", security.ca, "--etcd-cert", "\(security.directory)/coordinator-coordinator.pem", "--etcd-key", "\(security.directory)/coordinator-coordinator.key"]
        let address = try cluster.startCoordinator("coordinator-a", etcd: etcd.endpoints, clusterName: "tls", ttl: 2, options: credentials)
        let coordinators = try Coordinators(cluster, [address])
        defer { Task { await coordinators.close() } }
        #expect(try await coordinators.owner() == address)
        let status = try LocalTestCluster.run(["ctl", "status", "--etcd", etcd.endpoints, "--cluster-name", "tls"] + credentials + cluster.access.dropFirst(2))
        #expect(status.status == 0 && status.text.contains("\(address): OWNER"), "\(status.text)")

        let anonymous = try EtcdClient(endpoints: [etcd.endpoint(0)], tls: .init(ca: security.ca, certificate: nil, key: nil), logger: Self.etcdLogger())
        await #expect(throws: EtcdError.self) { _ = try await anonymous.get("/sparrow/tls/map") }
        await anonymous.shutdown()
        let plain = try EtcdClient(endpoints: [etcd.endpoint(0).replacingOccurrences(of: "https", with: "http")], logger: Self.etcdLogger())
        await #expect(throws: EtcdError.self) { _ = try await plain.get("/sparrow/tls/map") }
        await plain.shutdown()
    }

    /// etcd with 3 members: one killed changes nothing; without a quorum, searches go on from
    /// the last map while map changes and writes are refused with a clear error; with the
    /// quorum back, everything resumes.
    @Test func losingOneEtcdMemberChangesNothingAndLosingTheQuorumOnlyStopsChanges() async throws {
        let etcd = try EtcdTestCluster(members: 3)
        defer { etcd.down() }
        let records = GeneratedCorpus.documents(600, vocabulary: Self.vocabulary, seed: 45)
        let cluster = try LocalTestCluster(records: records, shards: 2, nodes: 2)
        defer { cluster.down() }
        cluster.kill("coordinator")
        let ttl = 2
        let addresses = [
            try cluster.startCoordinator("coordinator-a", etcd: etcd.endpoints, clusterName: "quorum", ttl: ttl),
            try cluster.startCoordinator("coordinator-b", etcd: etcd.endpoints, clusterName: "quorum", ttl: ttl),
        ]
        let coordinators = try Coordinators(cluster, addresses)
        defer { Task { await coordinators.close() } }
        let acknowledged = MoveShardTests.Acknowledged(loaded: records)
        #expect(try await coordinators.owner() == addresses[0])

        // One member killed (the first endpoint, which every coordinator used): writes, map
        // changes and searches go on through the owner of before, with no error.
        etcd.kill(0)
        let spare = try cluster.startNode("node-9")
        let until = ContinuousClock.now + .seconds(Double(ttl) * 1.5)
        var i = 0
        while ContinuousClock.now < until {
            try await acknowledged.write(coordinators.clients[0], ["one-down-\(i)"])
            i += 1
            try await Task.sleep(for: .milliseconds(20))
        }
        var add = Sparrow_V1_AddNodeRequest()
        add.node = "node-9"
        add.address = spare
        _ = try await coordinators.clients[0].call(CoordinatorMethod.addNode, add, timeout: .seconds(10), as: Sparrow_V1_MapChangeResponse.self)
        #expect(try await coordinators.owner(within: .zero) == addresses[0])

        // Quorum lost: within the TTL, writes and map changes are refused, saying why.
        etcd.kill(1)
        let lost = ContinuousClock.now
        var refusal: RPCError?
        while refusal == nil && ContinuousClock.now - lost < .seconds(ttl + 3) {
            do {
                _ = try await MoveShardTests.write(coordinators.clients[0], deletes: ["no-such-document"])
                try await Task.sleep(for: .milliseconds(50))
            } catch let error as RPCError {
                refusal = error
            }
        }
        let refused = try #require(refusal, "writes went on without an etcd quorum")
        print("without quorum after \((ContinuousClock.now - lost).milliseconds) ms: \(refused)")
        #expect(refused.code == .unavailable && refused.message.contains("searches go on"), "\(refused)")
        #expect(ContinuousClock.now - lost <= .seconds(ttl + 1))
        var remove = Sparrow_V1_RemoveNodeRequest()
        remove.node = "node-9"
        await #expect(throws: RPCError.self) {
            _ = try await coordinators.clients[0].call(CoordinatorMethod.removeNode, remove, timeout: .seconds(10), as: Sparrow_V1_MapChangeResponse.self)
        }
        for client in coordinators.clients {
            for query in GeneratedCorpus.queries(10, vocabulary: Self.vocabulary, seed: 46) {
                let response = try await MoveShardTests.search(client, query, k: 10)
                #expect(response.coverage.shardsOk == response.coverage.shardsTotal)
            }
        }

        // Quorum back: writes and map changes resume, and nothing acknowledged is lost.
        try etcd.start(0)
        try etcd.start(1)
        try etcd.waitUntilHealthy()
        try await coordinators.onOwner(within: .seconds(30)) { client in try await acknowledged.write(client, ["back"]) }
        _ = try await coordinators.onOwner { client in
            try await client.call(CoordinatorMethod.removeNode, remove, timeout: .seconds(10), as: Sparrow_V1_MapChangeResponse.self)
        }
        try await acknowledged.verify(coordinators.clients[1])
    }
}
