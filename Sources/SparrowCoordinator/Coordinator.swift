import Foundation
import Logging
import Metrics
import SparrowCore
import SparrowEncoder
import SparrowWire
import Synchronization

/// The query path: encode, fan out to one replica of every shard under a deadline, retry
/// another replica when one fails, merge the top k, and say which shards did not answer.
public final class Coordinator: Sendable {
    private let map: Mutex<ClusterMap>
    /// Where the map is kept, and whether this coordinator owns it.
    public let store: any ClusterMapStore
    /// Map changes one at a time: each is saved to the store before it is in force.
    private let mapChanges = AsyncGate()
    let encoder: QueryEncoder?
    /// The query encoder's identity, as builds record it; nil without an encoder.
    let encoderInfo: Sparrow_V1_QueryEncoderInfo?
    let defaultTimeout: Duration
    /// How this coordinator calls nodes and its owner: TLS with its coordinator certificate.
    let peers: ClientSecurity
    let logger: Logger
    /// Clients by node id, with the address each was made for.
    private let clients = Mutex<[String: (address: String, client: RPCClient)]>([:])
    /// Shard searches, coalesced per replica under load.
    let searches: SearchBatcher
    /// The bound on searches in progress.
    public let admission: SearchAdmission
    /// Replica latencies, hedging and its budget.
    let tail = TailTolerance()
    private let rotation = Atomic<Int>(0)
    /// One map-changing operation (a move, drain, rebalance, node change) at a time.
    let operations = AsyncGate()
    /// How to cancel each operation running or waiting (see `stopOperations`).
    let running = Mutex<[UUID: @Sendable () -> Void]>([:])
    /// Writes to one shard, and the switch of a move, one at a time (so every replica applies
    /// a shard's writes in the same order).
    private let shardGates = Mutex<[String: AsyncGate]>([:])
    /// Per shard, the tail of its in-sync replicas' change logs after the last write, and the
    /// map epoch it was learnt under (a map change makes the next write ask them again).
    let writeTails = Mutex<[String: (epoch: UInt64, tail: ChangeTail)]>([:])
    /// Stale replicas being caught up now ("shard@node").
    let repairs = Mutex<Set<String>>([])
    /// Copies nodes serve outside the map ("shard@node"), with when the owner first saw each.
    let orphans = Mutex<[OrphanKey: ContinuousClock.Instant]>([:])
    /// How long an orphan copy is kept before the owner drops it.
    let orphanGrace: Duration
    /// Nodes the health checks found not answering, with the reason.
    let down = Mutex<[String: String]>([:])
    static let timers = MetricHandles { Timer(label: $0, dimensions: $1) }
    static let counters = MetricHandles { Counter(label: $0, dimensions: $1) }

    /// A coordinator over `cluster` (saved back to `clusterFile` when it changes); `encoder`
    /// turns text queries into vectors (nil: vectors only). `peers` says how it calls nodes and
    /// its owner: with TLS, each node must present the node certificate of its id in the map.
    /// `admission` bounds the searches in progress.
    public convenience init(
        cluster: ClusterMap, clusterFile: String? = nil, owner: String? = nil, encoder: QueryEncoder?, defaultTimeout: Duration = .seconds(2),
        callsPerReplica: Int = 2, admission: SearchAdmission.Mode = .adaptive(.init()), peers: ClientSecurity = .none,
        orphanGrace: Duration = .seconds(600), logger: Logger
    ) throws {
        try self.init(
            cluster: cluster, store: FileMapStore(path: clusterFile, follows: owner), encoder: encoder, defaultTimeout: defaultTimeout,
            callsPerReplica: callsPerReplica, admission: admission, peers: peers, orphanGrace: orphanGrace, logger: logger)
    }

    /// A coordinator whose map is kept in `store` (a file, or etcd).
    public init(
        cluster: ClusterMap, store: any ClusterMapStore, encoder: QueryEncoder?, defaultTimeout: Duration = .seconds(2),
        callsPerReplica: Int = 2, admission: SearchAdmission.Mode = .adaptive(.init()), peers: ClientSecurity = .none,
        orphanGrace: Duration = .seconds(600), logger: Logger
    ) throws {
        guard callsPerReplica > 0 else { throw RPCError.invalidArgument("calls per replica must be at least 1, not \(callsPerReplica)") }
        map = Mutex(cluster)
        self.store = store
        self.encoder = encoder
        encoderInfo = encoder.map { encoder in
            var info = Sparrow_V1_QueryEncoderInfo()
            info.weighting = cluster.encoder?.weighting ?? "idf"
            info.tokenizer = encoder.tokenizerFingerprint
            info.idf = encoder.idfFingerprint
            return info
        }
        self.defaultTimeout = defaultTimeout
        self.peers = peers
        self.orphanGrace = orphanGrace
        self.logger = logger
        searches = SearchBatcher(limit: callsPerReplica)
        self.admission = SearchAdmission(admission)
        try cluster.validate(path: store.location)
    }

    /// Shard searches answered as part of a coalesced batch so far (see `SearchBatcher`).
    public var batchedSearches: Int { searches.batched }

    /// The cluster map in force.
    public var cluster: ClusterMap { map.withLock { $0 } }

    /// Changes the map: epoch + 1, checked, saved in the store, then in force.
    @discardableResult
    func update(_ change: (inout ClusterMap) throws -> Void) async throws -> ClusterMap {
        try await replace { map in
            try change(&map)
            map.epoch += 1
        }
    }

    /// Replaces the map with `change` applied, checked and saved in the store (one change at a
    /// time; a change the store refuses is not in force).
    @discardableResult
    func replace(_ change: (inout ClusterMap) throws -> Void) async throws -> ClusterMap {
        try await mapChanges.run {
            var next = cluster
            try change(&next)
            try next.validate(path: store.location)
            try await store.save(next)
            map.withLock { $0 = next }
            return next
        }
    }

    /// Puts `next` in force without saving it: the store's own map, as a follower learns it.
    /// Ignored (false) when it is not newer than the map in force.
    @discardableResult
    func install(_ next: ClusterMap) async throws -> Bool {
        try await mapChanges.run {
            guard next.epoch > cluster.epoch else { return false }
            try next.validate(path: store.location)
            map.withLock { $0 = next }
            return true
        }
    }

    /// The gate that orders writes to `shard`.
    func gate(_ shard: String) -> AsyncGate {
        shardGates.withLock { gates in
            if let gate = gates[shard] { return gate }
            let gate = AsyncGate()
            gates[shard] = gate
            return gate
        }
    }

    /// The query vector for a request: its own vector, or its text encoded inference-free.
    public func queryVector(_ request: Sparrow_V1_QueryRequest) throws -> [String: Float] {
        if let vector = try Self.checkedVector(request) { return vector }
        guard let encoder else {
            throw RPCError.invalidArgument("this coordinator has no query encoder (cluster file: encoder.model); send a vector instead of text")
        }
        return encoder.tokenWeights(request.text)
    }

    /// A query checked against `QueryLimits`: its own vector (finite, non-negative weights), or
    /// nil when it is a non-empty text to encode.
    public static func checkedVector(_ request: Sparrow_V1_QueryRequest) throws -> [String: Float]? {
        try QueryLimits.checkTerms(request.vector.count, field: "vector")
        guard request.text.utf8.count <= QueryLimits.maxTextBytes else {
            throw RPCError.invalidArgument("text: \(request.text.utf8.count) bytes; at most \(QueryLimits.maxTextBytes) are allowed")
        }
        if !request.vector.isEmpty {
            let vector = request.vector.weights
            if let bad = vector.first(where: { !$0.value.isFinite || $0.value < 0 }) {
                throw RPCError.invalidArgument("vector: token '\(bad.key)' has weight \(bad.value); weights must be finite and non-negative")
            }
            return vector
        }
        guard !request.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw RPCError.invalidArgument("the query needs a non-empty text or vector")
        }
        return nil
    }

    /// The hits a query asks for (0: 10), checked against `QueryLimits`.
    public static func checkedK(_ request: Sparrow_V1_QueryRequest) throws -> Int {
        let k = request.k == 0 ? 10 : Int(request.k)
        try QueryLimits.checkK(k)
        return k
    }

    /// Searches every shard; partial results are returned and labelled in `coverage`. Refused
    /// at once (`RESOURCE_EXHAUSTED`) past the `admission` bound.
    public func search(_ request: Sparrow_V1_QueryRequest) async throws -> Sparrow_V1_QueryResponse {
        let started = try admission.enter()
        defer { admission.leave(started: started) }
        return try await admitted(request)
    }

    /// Searches every shard for a search that holds a place in `admission` (the protobuf
    /// route's server takes it before the call gets a task, so that a refusal costs no task).
    func admitted(_ request: Sparrow_V1_QueryRequest) async throws -> Sparrow_V1_QueryResponse {
        let started = ContinuousClock.now
        let k = try Self.checkedK(request)
        let query = [Sparrow_V1_TermWeight](try queryVector(request))
        let cluster = self.cluster
        let timeout = request.timeoutMs > 0 ? Duration.milliseconds(Int64(request.timeoutMs)) : defaultTimeout
        let deadline = started + timeout
        var shardRequest = Sparrow_V1_SearchRequest()
        shardRequest.k = UInt32(k)
        shardRequest.query = query
        shardRequest.filter = request.filter
        shardRequest.explain = request.explain
        shardRequest.build = cluster.build ?? ""

        let first = rotation.add(1, ordering: .relaxed).oldValue
        let fanout = shardRequest
        // This task searches the first shard itself (a map lists at least one): a task fewer
        // per query, and none for a single shard.
        let outcomes = await withTaskGroup(of: ShardOutcome.self) { group in
            for (index, shard) in cluster.shards.enumerated().dropFirst() {
                group.addTask {
                    await self.searchShard(shard, request: fanout, deadline: deadline, rotation: first + index)
                }
            }
            var outcomes = [await searchShard(cluster.shards[0], request: fanout, deadline: deadline, rotation: first)]
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        var response = Sparrow_V1_QueryResponse()
        response.hits = ResultMerger.merge(outcomes.compactMap(\.result), k: k)
        response.coverage.shardsTotal = UInt32(cluster.shards.count)
        response.coverage.shardsOk = UInt32(outcomes.count { $0.result != nil })
        response.coverage.failed = outcomes.compactMap(\.failure).sorted { $0.shard < $1.shard }
        response.coverage.timedOut = outcomes.contains { $0.timedOut }
        response.query = query
        response.tookMs = (ContinuousClock.now - started).milliseconds
        if !response.coverage.failed.isEmpty {
            logger.warning("partial results", metadata: [
                "query.shards_ok": "\(response.coverage.shardsOk)", "query.shards_total": "\(response.coverage.shardsTotal)",
                "query.failed": "\(response.coverage.failed.map { "\($0.shard)@\($0.node): \($0.reason)" })",
            ])
        }
        return response
    }

    struct ShardOutcome: Sendable {
        var result: ResultMerger.ShardResult?
        var failure: Sparrow_V1_ShardFailure?
        var timedOut = false
    }

    /// The cluster map as served by `GET /v1/cluster`.
    public var clusterResponse: Sparrow_V1_ClusterResponse {
        let cluster = self.cluster
        var response = Sparrow_V1_ClusterResponse()
        response.epoch = cluster.epoch
        response.buildID = cluster.build ?? ""
        if case .follower(let owner?) = store.ownership { response.owner = owner }
        let down = self.down.withLock { $0 }
        response.nodes = cluster.nodes.map { node in
            var status = Sparrow_V1_NodeStatus()
            status.node = node.id
            status.address = node.address
            status.state = down[node.id] != nil ? "down" : node.isDraining ? "draining" : "up"
            status.reason = down[node.id] ?? ""
            return status
        }
        if let encoderInfo { response.encoder = encoderInfo }
        response.moves = (cluster.moves ?? []).map { move in
            var wire = Sparrow_V1_Move()
            wire.id = move.id
            wire.shard = move.shard
            wire.from = move.from ?? ""
            wire.to = move.to
            wire.phase = move.phase.rawValue
            return wire
        }
        response.orphans = orphanCopies
        response.shards = cluster.shards.map { shard in
            var entry = Sparrow_V1_ShardAssignment()
            entry.shard = shard.id
            entry.replicas = shard.replicas.map { node in
                var replica = Sparrow_V1_Replica()
                replica.node = node
                replica.address = cluster.address(of: node) ?? ""
                replica.stale = shard.stale?.contains(node) ?? false
                return replica
            }
            return entry
        }
        return response
    }

    /// Asks every node for its health: node id → the shards it serves, or why it is down.
    public func nodeHealth(timeout: Duration = .milliseconds(500)) async -> [String: Result<[String], NodeDown>] {
        var request = Sparrow_V1_HealthRequest()
        let cluster = self.cluster
        request.epoch = cluster.epoch
        let health = request
        return await withTaskGroup(of: (String, Result<[String], NodeDown>).self) { group in
            for node in cluster.nodes.map(\.id) {
                group.addTask {
                    guard let client = try? self.client(node) else { return (node, .failure(NodeDown(reason: "no address"))) }
                    do {
                        return (node, .success(try await client.call(ShardMethod.health, health, timeout: timeout, as: Sparrow_V1_HealthResponse.self).shards))
                    } catch {
                        return (node, .failure(NodeDown(reason: "\(error)")))
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
    }

    public struct NodeDown: Error, Equatable {
        public var reason: String
    }

    /// Each node's state as the last health checks found it (node id → nil when up, else why
    /// not), without calling any node.
    public var nodeStates: [String: String?] {
        let down = self.down.withLock { $0 }
        return Dictionary(uniqueKeysWithValues: cluster.nodes.map { ($0.id, down[$0.id]) })
    }

    /// The RPC client of `node` at its address in the map now: made on first use, and made again
    /// (the old one closed) when the map gives the node another address, as a follower learns
    /// from its owner's map.
    func client(_ node: String) throws -> RPCClient {
        guard let address = map.withLock({ $0.address(of: node) }) else { throw RPCError.notFound("node '\(node)' is not in the cluster map") }
        if let cached = clients.withLock({ $0[node] }), cached.address == address { return cached.client }
        let endpoint = try Endpoint(parsing: address)
        let (client, replaced) = clients.withLock { clients -> (RPCClient, RPCClient?) in
            if let cached = clients[node], cached.address == address { return (cached.client, nil) }
            let replaced = clients[node]?.client
            let client = nodeClient(endpoint, node: node)
            clients[node] = (address, client)
            return (client, replaced)
        }
        if let replaced { Task { await replaced.close() } }
        return client
    }

    /// A client for node `node` at `endpoint`: with TLS, it talks only to that node's certificate.
    func nodeClient(_ endpoint: Endpoint, node: String?) -> RPCClient {
        RPCClient(endpoint, security: peers.expecting(PeerExpectation(role: .node, id: node)))
    }

    /// Forgets the client of a node taken out of the map.
    func forgetClient(_ node: String) async {
        await clients.withLock { $0.removeValue(forKey: node) }?.client.close()
    }

    public func close() async {
        for client in clients.withLock({ $0.values.map(\.client) }) { await client.close() }
    }
}
