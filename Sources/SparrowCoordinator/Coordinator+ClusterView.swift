import Foundation
import SparrowWire

/// The map as clients see it (`GET /v1/cluster`, the Cluster RPC, `ctl status`).
extension Coordinator {
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
}
