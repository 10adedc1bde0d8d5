import Foundation
import SparrowEtcd
import SparrowWire
import Synchronization

/// The cluster map in etcd, shared by several coordinators of which one, elected by lease,
/// owns it (see `Election` and `EtcdControlPlane`). Keys, under `/sparrow/<cluster>/`:
///
///     map                    the map (JSON), written only by the owner
///     coordinators/<lease>   one per coordinator, bound to its lease: a `CoordinatorRecord`
///
/// Every save is one transaction that requires the owner's key at its create revision and the
/// map at the revision this coordinator last saw: a deposed owner's change, or one made on a
/// map it has not seen, fails and overwrites nothing. Epochs rise by one with each saved map,
/// in the order of the map key's revisions.
public final class EtcdMapStore: ClusterMapStore {
    public let client: EtcdClient
    public let keys: Keys
    private struct State {
        var election = Election()
        /// The map key's revision as this coordinator last read or wrote it (0: no map).
        var mapRevision: Int64 = 0
        /// The registration under which this coordinator finished taking over (see `ownership`).
        var tookOver: Election.Candidate?
    }
    private let state = Mutex(State())

    /// The keys of one cluster.
    public struct Keys: Sendable {
        public let cluster: String
        public var prefix: String { "/sparrow/\(cluster)/" }
        public var map: String { prefix + "map" }
        public var coordinators: String { prefix + "coordinators/" }

        public init(cluster: String) throws {
            guard !cluster.isEmpty, cluster.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw ClusterError.file(path: "--cluster-name", reason: "'\(cluster)' must be letters, digits, '-', '_' or '.'")
            }
            self.cluster = cluster
        }

        /// The key of the coordinator holding `lease`.
        public func coordinator(lease: Int64) -> String { coordinators + String(UInt64(bitPattern: lease), radix: 16) }
    }

    public init(client: EtcdClient, cluster: String) throws {
        self.client = client
        keys = try Keys(cluster: cluster)
    }

    public var location: String { "etcd \(keys.map)" }

    /// Owner only once elected *and* taken over (`tookOver(as:)`): until the new owner has raised
    /// the epoch, a write it routed would carry the same epoch as the last owner's.
    public var ownership: MapOwnership {
        let (role, tookOver) = state.withLock { ($0.election.role(at: .now), $0.tookOver) }
        switch role {
        case .owner(let me): return me == tookOver ? .owner : .unavailable(reason: "this coordinator is taking over the cluster map")
        case .follower(let owner): return .follower(owner: owner.flatMap { CoordinatorRecord(data: $0.value)?.rpc })
        case .unavailable(let reason): return .unavailable(reason: reason)
        }
    }

    /// Records that this coordinator, elected as `me`, has taken over: it is the owner now.
    public func tookOver(as me: Election.Candidate) { state.withLock { $0.tookOver = me } }

    /// Whether this coordinator has taken over as `me`.
    public func hasTakenOver(as me: Election.Candidate) -> Bool { state.withLock { $0.tookOver == me } }

    /// This coordinator's role now.
    public var role: Election.Role { state.withLock { $0.election.role(at: .now) } }

    /// Every coordinator registered, oldest (the owner) first.
    public var coordinators: [CoordinatorRecord] { state.withLock { $0.election.candidates }.compactMap { CoordinatorRecord(data: $0.value) } }

    /// Changes the election as etcd reported (the control plane's part; public for tools and tests).
    public func elect<T>(_ body: (inout Election) -> T) -> T { state.withLock { body(&$0.election) } }

    /// The map key's revision this coordinator's next save requires (it only rises).
    public var mapRevision: Int64 {
        get { state.withLock { $0.mapRevision } }
        set { state.withLock { $0.mapRevision = max($0.mapRevision, newValue) } }
    }

    public func save(_ map: ClusterMap) async throws {
        guard case .owner(let me) = role else {
            throw ownership.refusal(of: "map changes") ?? .mapConflict(location: location, revision: mapRevision)
        }
        let expected = mapRevision
        let request = EtcdWire.TxnRequest(
            if: [.created(me.key, at: me.createRevision), .modified(keys.map, at: expected)], then: [.put(keys.map, try Self.encode(map))])
        let response: EtcdWire.TxnResponse
        do {
            response = try await client.txn(request)
        } catch {
            throw CoordinatorError.mapUnavailable(what: "the map change", reason: "\(error)")
        }
        guard response.succeeded == true, let revision = response.header?.revision?.value else {
            throw CoordinatorError.mapConflict(location: location, revision: expected)
        }
        mapRevision = revision
    }

    /// The map as etcd holds it, with its revision (nil: none yet).
    public func load() async throws -> (map: ClusterMap, revision: Int64)? {
        let (kv, _) = try await client.get(keys.map)
        guard let kv, let value = kv.value else { return nil }
        return (try Self.decode(value, location: location), kv.mod_revision?.value ?? 0)
    }

    /// Writes `map` as the cluster's first map, unless etcd holds one already (then false).
    public func create(_ map: ClusterMap) async throws -> Bool {
        let response = try await client.txn(.init(if: [.created(keys.map, at: 0)], then: [.put(keys.map, try Self.encode(map))]))
        return response.succeeded == true
    }

    static func encode(_ map: ClusterMap) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(map)
    }

    static func decode(_ data: Data, location: String) throws -> ClusterMap {
        let map: ClusterMap
        do {
            map = try JSONDecoder().decode(ClusterMap.self, from: data)
        } catch let error as DecodingError {
            throw ClusterError.file(path: location, reason: ClusterMap.describe(error))
        }
        try map.validate(path: location)
        return map
    }
}

/// What a coordinator registers about itself in etcd.
public struct CoordinatorRecord: Codable, Sendable, Equatable {
    /// Its name (its certificate's identity, or its host).
    public var name: String
    /// Where other processes reach its protobuf/TCP API.
    public var rpc: String
    /// Where they reach its HTTP API.
    public var http: String?

    public init(name: String, rpc: String, http: String?) {
        self.name = name
        self.rpc = rpc
        self.http = http
    }

    init?(data: Data) {
        guard let record = try? JSONDecoder().decode(Self.self, from: data) else { return nil }
        self = record
    }

    var data: Data { (try? JSONEncoder().encode(self)) ?? Data() }
}
