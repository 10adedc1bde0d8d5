import Foundation
import SparrowWire

/// The map as clients see it (`GET /v1/cluster`, the Cluster RPC, `ctl status`): nodes with
/// their health, shards with their replicas, moves, orphan copies.
public struct ClusterView: Sendable, Equatable {
    public struct Node: Sendable, Equatable {
        public var id: String
        public var address: String
        /// "up", "draining" or "down".
        public var state: String
        /// Why it is down.
        public var reason: String?
    }

    public struct Replica: Sendable, Equatable {
        public var node: String
        public var address: String
        /// It missed acknowledged writes and serves nothing until caught up.
        public var stale: Bool
    }

    public struct Shard: Sendable, Equatable {
        public var id: String
        public var replicas: [Replica]
    }

    /// A move in progress, as the map records it, with its copy's progress when this
    /// coordinator is copying it now.
    public struct Move: Sendable, Equatable {
        public var move: ClusterMap.Move
        public var copy: Copy?
    }

    public struct Copy: Sendable, Equatable {
        public var copiedBytes: UInt64
        public var totalBytes: UInt64
    }

    /// A copy of a shard on a node the map does not place it on, dropped after a grace period.
    public struct Orphan: Sendable, Equatable {
        public var shard: String
        public var node: String
        public var seenSeconds: UInt32
        public var dropInSeconds: UInt32
    }

    public var epoch: UInt64
    public var build: String?
    /// The coordinator that owns the map, when this one follows it.
    public var owner: String?
    public var nodes: [Node]
    public var shards: [Shard]
    public var moves: [Move]
    public var orphans: [Orphan]
}

extension Coordinator {
    /// The cluster as this coordinator sees it now.
    public var clusterView: ClusterView {
        let cluster = self.cluster
        let down = self.down.withLock { $0 }
        let copies = self.copies.withLock { $0 }
        var owner: String?
        if case .follower(let name?) = store.ownership { owner = name }
        return ClusterView(
            epoch: cluster.epoch, build: cluster.build.flatMap { $0.isEmpty ? nil : $0 }, owner: owner,
            nodes: cluster.nodes.map { node in
                .init(id: node.id, address: node.address, state: down[node.id] != nil ? "down" : node.isDraining ? "draining" : "up", reason: down[node.id])
            },
            shards: cluster.shards.map { shard in
                .init(id: shard.id, replicas: shard.replicas.map { node in
                    .init(node: node, address: cluster.address(of: node) ?? "", stale: shard.stale?.contains(node) ?? false)
                })
            },
            moves: (cluster.moves ?? []).map { .init(move: $0, copy: copies[$0.id]) }, orphans: orphanCopies)
    }

    /// The Cluster RPC's answer: the view, and the query encoder this coordinator serves with.
    var clusterResponse: Sparrow_V1_ClusterResponse {
        var response = Sparrow_V1_ClusterResponse(clusterView)
        if let encoderInfo { response.encoder = encoderInfo }
        return response
    }
}

extension Sparrow_V1_ClusterResponse {
    init(_ view: ClusterView) {
        self.init()
        epoch = view.epoch
        buildID = view.build ?? ""
        owner = view.owner ?? ""
        nodes = view.nodes.map { node in
            var status = Sparrow_V1_NodeStatus()
            status.node = node.id
            status.address = node.address
            status.state = node.state
            status.reason = node.reason ?? ""
            return status
        }
        moves = view.moves.map { entry in
            var wire = Sparrow_V1_Move()
            wire.id = entry.move.id
            wire.shard = entry.move.shard
            wire.from = entry.move.from ?? ""
            wire.to = entry.move.to
            wire.phase = entry.move.phase.rawValue
            wire.copiedBytes = entry.copy?.copiedBytes ?? 0
            wire.totalBytes = entry.copy?.totalBytes ?? 0
            return wire
        }
        orphans = view.orphans.map { orphan in
            var copy = Sparrow_V1_OrphanCopy()
            (copy.shard, copy.node) = (orphan.shard, orphan.node)
            (copy.seenSeconds, copy.dropInSeconds) = (orphan.seenSeconds, orphan.dropInSeconds)
            return copy
        }
        shards = view.shards.map { shard in
            var entry = Sparrow_V1_ShardAssignment()
            entry.shard = shard.id
            entry.replicas = shard.replicas.map { replica in
                var wire = Sparrow_V1_Replica()
                wire.node = replica.node
                wire.address = replica.address
                wire.stale = replica.stale
                return wire
            }
            return entry
        }
    }
}
