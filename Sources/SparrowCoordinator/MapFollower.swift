import Foundation
import ServiceLifecycle
import SparrowWire

/// Keeps a follower coordinator's map equal to its owner's: every `interval` it fetches the
/// owner's map (Cluster RPC) and adopts it when its epoch is newer. A follower serves searches;
/// writes and map changes go to the owner.
public struct MapFollower: Service {
    let coordinator: Coordinator
    let interval: Duration
    /// How often followers fetch the map unless told otherwise.
    public static let defaultInterval = Duration.milliseconds(500)

    public init(coordinator: Coordinator, interval: Duration = defaultInterval) {
        self.coordinator = coordinator
        self.interval = interval
    }

    public func run() async throws {
        guard case .follower(let owner?) = coordinator.store.ownership else { return }
        let client = RPCClient(try Endpoint(parsing: owner), security: coordinator.peers.expecting(PeerExpectation(role: .coordinator)))
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let map = try await client.call(CoordinatorMethod.cluster, Sparrow_V1_ClusterRequest(), timeout: min(interval, .seconds(2)), as: Sparrow_V1_ClusterResponse.self)
                    try await coordinator.adopt(map)
                } catch {
                    coordinator.logger.warning("cannot fetch the owner's map; serving the last one", metadata: ["cluster.owner": "\(owner)", "error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
        await client.close()
    }
}

extension Coordinator {
    /// Takes the owner's map when it is newer than ours (and saves it, with our encoder).
    func adopt(_ owner: Sparrow_V1_ClusterResponse) async throws {
        guard owner.epoch > cluster.epoch else { return }
        let updated = try await maps.replace { map in
            map.epoch = owner.epoch
            map.nodes = owner.nodes.map { .init(id: $0.node, address: $0.address, state: $0.state == "draining" ? "draining" : nil) }
            map.shards = owner.shards.map { shard in
                let stale = shard.replicas.filter(\.stale).map(\.node)
                return .init(id: shard.shard, replicas: shard.replicas.map(\.node), stale: stale.isEmpty ? nil : stale)
            }
            map.build = owner.buildID.isEmpty ? nil : owner.buildID
            map.moves = nil
        }
        logger.info("map adopted from the owner", metadata: ["cluster.epoch": "\(updated.epoch)", "cluster.owner": "\(owner.owner)"])
    }

    /// Refuses a change on any coordinator but the owner: the owner alone changes the map and
    /// routes writes.
    func requireOwner(_ what: String) throws {
        if let refusal = store.ownership.refusal(of: what) { throw refusal }
    }

    /// Whether this coordinator owns the map now.
    var isOwner: Bool { store.ownership == .owner }
}
