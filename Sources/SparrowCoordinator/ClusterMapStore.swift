import Foundation
import SparrowWire

/// Where the cluster map is kept, and whether this coordinator may change it. Two stores:
/// `FileMapStore` (a YAML file, one coordinator: the embedded default) and `EtcdMapStore`
/// (etcd v3: coordinators elect an owner by lease, and every owner-only change is a
/// transaction guarded by the owner's key).
public protocol ClusterMapStore: Sendable {
    /// Where the map lives, for messages: a file path, or etcd's key.
    var location: String { get }
    /// Whether this coordinator owns the map now.
    var ownership: MapOwnership { get }
    /// Saves `map` as the map in force; throws (and saves nothing) when this coordinator may
    /// not change it now.
    func save(_ map: ClusterMap) async throws
}

/// Whether a coordinator may change the map and route writes.
public enum MapOwnership: Sendable, Equatable {
    /// It owns the map.
    case owner
    /// Another coordinator does, reachable at `address` (protobuf/TCP) when known.
    case follower(owner: String?)
    /// No coordinator can own it from here now (etcd unreachable or without quorum).
    case unavailable(reason: String)

    /// The refusal of `what` for anything but the owner.
    func refusal(of what: String) -> CoordinatorError? {
        switch self {
        case .owner: nil
        case .follower(let owner): .notOwner(what: what, owner: owner)
        case .unavailable(let reason): .mapUnavailable(what: what, reason: reason)
        }
    }
}

/// The cluster map in a YAML file (or in memory only, with no path). A coordinator that
/// follows another one (`--follow`) keeps its owner's latest map in its file.
public struct FileMapStore: ClusterMapStore {
    public let path: String?
    /// The owner's address when this coordinator follows it.
    public let follows: String?

    public init(path: String?, follows: String? = nil) {
        self.path = path
        self.follows = follows
    }

    public var location: String { path ?? "cluster map" }

    public var ownership: MapOwnership { follows.map { .follower(owner: $0) } ?? .owner }

    public func save(_ map: ClusterMap) async throws {
        if let path { try map.save(path: path) }
    }
}
