import Foundation
import Logging
import Metrics
import SparrowCore
import SparrowEncoder
import SparrowWire
import Synchronization

/// A coordinator: the query path (`Coordinator+Search`: encode, fan out to one replica of
/// every shard under a deadline, merge the top k, say which shards did not answer), the map and
/// its store (`ClusterMapKeeper`, `ClusterMapStore`), what only the owner does (writes, moves,
/// loads, node changes, repairs), health checks (`HealthChecker`) and the connections to the
/// nodes (`NodeConnections`), each in its own file.
public final class Coordinator: Sendable {
    /// The map in force and its store.
    let maps: ClusterMapKeeper
    let encoder: QueryEncoder?
    /// The query encoder's identity, as builds record it; nil without an encoder.
    let encoderInfo: Sparrow_V1_QueryEncoderInfo?
    let defaultTimeout: Duration
    /// How this coordinator calls nodes and its owner: TLS with its coordinator certificate.
    var peers: ClientSecurity { nodes.security }
    let logger: Logger
    /// Its connections to the nodes.
    let nodes: NodeConnections
    /// Shard searches, coalesced per replica under load.
    let searches: SearchBatcher
    /// The bound on searches in progress.
    public let admission: SearchAdmission
    /// Replica latencies, hedging and its budget.
    let tail = TailTolerance()
    let rotation = Atomic<Int>(0)
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
    /// Moves copying now (by move id): bytes copied and in all.
    let copies = Mutex<[String: ClusterView.Copy]>([:])
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
        maps = ClusterMapKeeper(cluster, store: store)
        nodes = NodeConnections(security: peers)
        self.encoder = encoder
        encoderInfo = encoder.map { encoder in
            var info = Sparrow_V1_QueryEncoderInfo()
            info.weighting = cluster.encoder?.weighting ?? "idf"
            info.tokenizer = encoder.tokenizerFingerprint
            info.idf = encoder.idfFingerprint
            return info
        }
        self.defaultTimeout = defaultTimeout
        self.orphanGrace = orphanGrace
        self.logger = logger
        searches = SearchBatcher(limit: callsPerReplica)
        self.admission = SearchAdmission(admission)
        try cluster.validate(path: store.location)
    }

    /// Shard searches answered as part of a coalesced batch so far (see `SearchBatcher`).
    public var batchedSearches: Int { searches.batched }

    /// The cluster map in force.
    public var cluster: ClusterMap { maps.current }

    /// Where the map is kept, and whether this coordinator owns it.
    public var store: any ClusterMapStore { maps.store }

    /// Changes the map: epoch + 1, checked, saved in the store, then in force.
    @discardableResult
    func update(_ change: (inout ClusterMap) throws -> Void) async throws -> ClusterMap {
        try await maps.replace { map in
            try change(&map)
            map.epoch += 1
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

    /// The RPC client of `node` at its address in the map now (see `NodeConnections`).
    func client(_ node: String) throws -> RPCClient {
        guard let address = maps.address(of: node) else { throw RPCError.notFound("node '\(node)' is not in the cluster map") }
        return try nodes.client(node, at: address)
    }

    public func close() async {
        await nodes.closeAll()
    }
}
