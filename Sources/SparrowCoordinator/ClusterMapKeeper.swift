import Synchronization

/// The cluster map in force and the store it is kept in: changes one at a time, each checked
/// and saved in the store before it is in force, so that what the coordinator acts on is
/// always what the store holds (or, on a follower, what it last learnt from it).
public final class ClusterMapKeeper: Sendable {
    private let map: Mutex<ClusterMap>
    public let store: any ClusterMapStore
    private let changes = AsyncGate()

    public init(_ map: ClusterMap, store: any ClusterMapStore) {
        self.map = Mutex(map)
        self.store = store
    }

    public var current: ClusterMap { map.withLock { $0 } }

    /// The address the map in force gives `node` (read in place: every shard call asks).
    func address(of node: String) -> String? { map.withLock { $0.address(of: node) } }

    /// Replaces the map with `change` applied, checked and saved in the store; a change the
    /// map's checks or the store refuse is not in force.
    @discardableResult
    public func replace(_ change: (inout ClusterMap) throws -> Void) async throws -> ClusterMap {
        try await changes.run {
            var next = current
            try change(&next)
            do {
                try next.validate(path: store.location)
            } catch ClusterError.file(let location, let reason) {
                throw CoordinatorError.invalidMap(location: location, reason: reason)
            }
            try await store.save(next)
            map.withLock { $0 = next }
            return next
        }
    }

    /// Puts `next` in force without saving it: the store's own map, as a follower learns it.
    /// Ignored (false) when it is not newer than the map in force.
    @discardableResult
    public func install(_ next: ClusterMap) async throws -> Bool {
        try await changes.run {
            guard next.epoch > current.epoch else { return false }
            try next.validate(path: store.location)
            map.withLock { $0 = next }
            return true
        }
    }
}
