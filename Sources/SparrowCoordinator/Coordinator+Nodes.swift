import Foundation
import SparrowWire

/// Node membership and placement: add, drain and remove nodes, set a shard's replica count,
/// rebalance. Plans come from `PlacementPlanner`; each move runs as `move-shard` would, one at
/// a time.
extension Coordinator {
    func addNode(_ request: Sparrow_V1_AddNodeRequest) async throws -> Sparrow_V1_MapChangeResponse {
        try await operation {
            let endpoint: Endpoint
            do {
                endpoint = try Endpoint(parsing: request.address)
            } catch {
                throw RPCError.invalidArgument("address '\(request.address)' is not host:port")
            }
            let id = request.node.isEmpty ? try await self.probe(endpoint, node: nil).node : request.node
            // With TLS, the node must present a node certificate naming that id: nobody joins as
            // a node without one from the cluster's CA.
            _ = try await self.probe(endpoint, node: id)
            let cluster = self.cluster
            if let known = cluster.nodes.first(where: { $0.id == id || $0.address == request.address }) {
                throw RPCError.failedPrecondition("the map already has node \(known.id) at \(known.address)")
            }
            try await self.update { $0.nodes.append(.init(id: id, address: request.address)) }
            self.logger.info("node added", metadata: ["node.id": "\(id)", "node.address": "\(request.address)"])
            return self.mapChangeResponse([])
        }
    }

    /// The health of the shard node at `endpoint` (which, with TLS, must be node `node`, or any node when nil).
    private func probe(_ endpoint: Endpoint, node: String?) async throws -> Sparrow_V1_HealthResponse {
        let probe = self.nodes.make(endpoint, node: node)
        defer { Task { await probe.close() } }
        do {
            return try await probe.call(ShardMethod.health, Sparrow_V1_HealthRequest(), timeout: .seconds(5), as: Sparrow_V1_HealthResponse.self)
        } catch let error as RPCError where error.code == .unauthenticated {
            throw RPCError.failedPrecondition("the shard node at \(endpoint) is refused: \(error.message)")
        } catch {
            throw RPCError(.unavailable, "no shard node answers at \(endpoint): \(error)")
        }
    }

    func removeNode(_ request: Sparrow_V1_RemoveNodeRequest) async throws -> Sparrow_V1_MapChangeResponse {
        try await operation {
            let cluster = self.cluster
            guard cluster.nodes.contains(where: { $0.id == request.node }) else { throw RPCError.notFound("no node '\(request.node)' in the cluster map") }
            let held = cluster.shards.filter { $0.replicas.contains(request.node) }.map(\.id)
            guard held.isEmpty else {
                throw RPCError.failedPrecondition("node \(request.node) still holds \(held.joined(separator: ", ")): drain it first (ctl drain-node)")
            }
            if let move = cluster.moves?.first(where: { $0.source == request.node || $0.to == request.node }) {
                throw RPCError.failedPrecondition("node \(request.node) takes part in the move of \(move.shard): finish or abort it first")
            }
            try await self.update { $0.nodes.removeAll { $0.id == request.node } }
            await self.nodes.forget(request.node)
            self.logger.info("node removed", metadata: ["node.id": "\(request.node)"])
            return self.mapChangeResponse([])
        }
    }

    func drainNode(_ request: Sparrow_V1_DrainNodeRequest) async throws -> Sparrow_V1_MapChangeResponse {
        try await operation {
            guard let node = self.cluster.nodes.first(where: { $0.id == request.node }) else {
                throw RPCError.notFound("no node '\(request.node)' in the cluster map")
            }
            let plan = try await self.plan { try PlacementPlanner.drain(request.node, $0) }
            guard !request.dryRun else { return self.mapChangeResponse(plan) }
            if !node.isDraining {
                try await self.update { map in map.nodes = map.nodes.map { $0.id == request.node ? .init(id: $0.id, address: $0.address, state: "draining") : $0 } }
            }
            try await self.carryOut(plan, rate: request.bytesPerSecond)
            return self.mapChangeResponse(plan)
        }
    }

    func setReplicas(_ request: Sparrow_V1_SetReplicasRequest) async throws -> Sparrow_V1_MapChangeResponse {
        try await operation {
            let plan = try await self.plan { try PlacementPlanner.setReplicas(request.shard, Int(request.replicas), $0) }
            if !request.dryRun { try await self.carryOut(plan, rate: request.bytesPerSecond) }
            return self.mapChangeResponse(plan)
        }
    }

    func rebalance(_ request: Sparrow_V1_RebalanceRequest) async throws -> Sparrow_V1_MapChangeResponse {
        try await operation {
            let plan = try await self.plan { PlacementPlanner.rebalance($0) }
            if !request.dryRun { try await self.carryOut(plan, rate: request.bytesPerSecond) }
            return self.mapChangeResponse(plan)
        }
    }

    /// A plan over the current placement; refused while a move is unfinished.
    private func plan(_ planner: (Placement) throws -> [PlannedMove]) async throws -> [PlannedMove] {
        if let move = cluster.moves?.first {
            throw RPCError.failedPrecondition("the move of \(move.shard) to \(move.to) is unfinished (phase \(move.phase.rawValue)): resume or abort it first")
        }
        let placement = await placement()
        do {
            return try planner(placement)
        } catch let error as PlanError {
            throw RPCError.failedPrecondition(error.description)
        }
    }

    /// Replica sets, shard sizes (bytes on disk, as their replicas report them) and the nodes
    /// that may take shards (up and not draining).
    func placement() async -> Placement {
        let cluster = self.cluster
        let reports = await withTaskGroup(of: [Sparrow_V1_ShardStats].self) { group in
            for node in cluster.nodes.map(\.id) where downReason(node) == nil {
                group.addTask {
                    (try? await self.client(node).call(ShardMethod.stats, Sparrow_V1_StatsRequest(), timeout: .seconds(10), as: Sparrow_V1_StatsResponse.self).shards) ?? []
                }
            }
            return await group.reduce(into: [Sparrow_V1_ShardStats]()) { $0 += $1 }
        }
        var bytes: [String: UInt64] = [:]
        for stats in reports { bytes[stats.shard] = max(bytes[stats.shard] ?? 0, stats.bytesOnDisk) }
        return Placement(
            replicas: Dictionary(uniqueKeysWithValues: cluster.shards.map { ($0.id, $0.replicas) }),
            bytes: bytes.filter { cluster.shard($0.key) != nil },
            eligible: cluster.nodes.filter { !$0.isDraining && downReason($0.id) == nil }.map(\.id))
    }

    /// Runs the plan's steps in order.
    private func carryOut(_ plan: [PlannedMove], rate: UInt64) async throws {
        for (index, step) in plan.enumerated() {
            logger.info("plan step", metadata: ["plan.step": "\(index + 1)/\(plan.count)", "plan.move": "\(step)"])
            if let to = step.to {
                try await runMove(shard: step.shard, from: step.from, to: to, rate: rate)
            } else if let from = step.from {
                try await removeReplica(step.shard, from: from)
            }
        }
    }

    /// Takes `node` out of the shard's replicas, then drops its copy once searches sent on
    /// the old map are over.
    private func removeReplica(_ shard: String, from node: String) async throws {
        _ = try await gate(shard).run {
            try await self.update { map in
                guard let index = map.shards.firstIndex(where: { $0.id == shard }), map.shards[index].replicas.count > 1 else {
                    throw RPCError.failedPrecondition("\(shard) keeps at least one replica")
                }
                map.shards[index].replicas.removeAll { $0 == node }
                map.shards[index].markInSync(node)
            }
        }
        try await Task.sleep(for: dropGrace)
        try await dropShard(shard, on: node)
    }
}
