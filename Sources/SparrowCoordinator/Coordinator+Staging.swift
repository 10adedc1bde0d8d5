import SparrowWire

/// The node calls `ctl load` needs, relayed: only a coordinator may call a node's bundle
/// methods, so an operator's tool stages bundles through it (`StageBundle`) and reads the
/// replicas' statistics from it (`ReplicaStats`).
extension Coordinator {
    func stageBundle(_ request: Sparrow_V1_StageBundleRequest) async throws -> Sparrow_V1_StageBundleResponse {
        try requireOwner("bundle uploads (ctl load)")
        let cluster = self.cluster
        guard cluster.address(of: request.node) != nil else { throw RPCError.notFound("no node '\(request.node)' in the cluster map") }
        var response = Sparrow_V1_StageBundleResponse()
        switch request.step {
        case .upload(var upload):
            guard cluster.shards.contains(where: { $0.id == upload.shard && $0.replicas.contains(request.node) }) else {
                throw RPCError.failedPrecondition("node \(request.node) does not serve shard '\(upload.shard)' in the map")
            }
            upload.epoch = cluster.epoch
            response.upload = try await client(request.node).call(ShardMethod.uploadBundle, upload, timeout: .seconds(60))
        case .prepare(var prepare):
            prepare.epoch = cluster.epoch
            response.prepare = try await client(request.node).call(ShardMethod.prepareBundle, prepare, timeout: .seconds(600))
        case nil:
            throw RPCError.invalidArgument("StageBundle needs an upload or a prepare step")
        }
        return response
    }

    func replicaStats(_ request: Sparrow_V1_ReplicaStatsRequest) async -> Sparrow_V1_ReplicaStatsResponse {
        let cluster = self.cluster
        let replicas = cluster.shards.filter { request.shard.isEmpty || $0.id == request.shard }.flatMap { shard in shard.replicas.map { (shard.id, $0) } }
        var response = Sparrow_V1_ReplicaStatsResponse()
        response.replicas = await withTaskGroup(of: Sparrow_V1_ReplicaStats.self) { group in
            for (shard, node) in replicas {
                group.addTask {
                    var entry = Sparrow_V1_ReplicaStats()
                    entry.shard = shard
                    entry.node = node
                    var stats = Sparrow_V1_StatsRequest()
                    stats.shard = shard
                    // A node the health checks found down is not asked: `ctl status` answers at once during a partition.
                    if let reason = self.downReason(node) {
                        entry.error = "node down: \(reason)"
                        return entry
                    }
                    do {
                        let answer = try await self.client(node).call(ShardMethod.stats, stats, timeout: .seconds(2), as: Sparrow_V1_StatsResponse.self)
                        if let first = answer.shards.first { entry.stats = first }
                    } catch {
                        entry.error = "\(error)"
                    }
                    return entry
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        response.replicas.sort { ($0.shard, $0.node) < ($1.shard, $1.node) }
        return response
    }
}
