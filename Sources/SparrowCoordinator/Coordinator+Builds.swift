import Foundation
import SparrowWire

/// Switching the cluster to a new build (the last step of `sparrow ctl load`).
extension Coordinator {
    /// Why a build encoded with `build` cannot be searched through a coordinator encoding
    /// queries with `coordinator`; nil when it can.
    public static func incompatibility(build: Sparrow_V1_QueryEncoderInfo?, coordinator: Sparrow_V1_QueryEncoderInfo?) -> String? {
        guard let coordinator else { return nil }   // vector queries only: any build
        guard let build else {
            return "the build has no query encoder (built from vectors without --model), but this coordinator encodes text queries"
        }
        if build.weighting != coordinator.weighting {
            return "the build's query weighting is \(build.weighting), the coordinator's \(coordinator.weighting)"
        }
        if build.tokenizer != coordinator.tokenizer {
            return "the build's tokenizer (fingerprint \(build.tokenizer)) differs from the coordinator's (\(coordinator.tokenizer))"
        }
        if build.idf != coordinator.idf {
            return "the build's IDF table (fingerprint \(build.idf)) differs from the coordinator's (\(coordinator.idf))"
        }
        return nil
    }

    /// Checks the build against the encoder and every replica, then switches to it: epoch + 1,
    /// saved, searches ask for it, and the nodes are told to activate it.
    func activateBuild(_ request: Sparrow_V1_ActivateBuildRequest) async throws -> Sparrow_V1_ActivateBuildResponse {
        try requireOwner("build activations (ctl load)")
        guard !request.buildID.isEmpty else { throw RPCError.invalidArgument("build_id is empty") }
        if let reason = Self.incompatibility(build: request.hasEncoder ? request.encoder : nil, coordinator: encoderInfo) {
            throw RPCError.failedPrecondition("build \(request.buildID) refused: \(reason)")
        }
        let current = cluster
        if let moves = current.moves, !moves.isEmpty {
            throw RPCError.failedPrecondition("build \(request.buildID) refused: shard moves are in progress (\(moves.map { "\($0.shard) → \($0.to)" }.joined(separator: ", "))); finish or abort them first")
        }
        let mapShards = Set(current.shards.map(\.id))
        guard Set(request.shards) == mapShards else {
            throw RPCError.failedPrecondition(
                "build \(request.buildID) has shards [\(request.shards.sorted().joined(separator: ", "))], the cluster [\(mapShards.sorted().joined(separator: ", "))]")
        }
        let replicas = current.shards.flatMap { shard in shard.replicas.map { (shard: shard.id, node: $0) } }
        let missing = await withTaskGroup(of: Sparrow_V1_ShardFailure?.self) { group in
            for replica in replicas {
                group.addTask { await self.checkPrepared(replica.shard, on: replica.node, build: request.buildID) }
            }
            return await group.reduce(into: [Sparrow_V1_ShardFailure]()) { if let failure = $1 { $0.append(failure) } }
        }
        guard missing.isEmpty else {
            let list = missing.map { "\($0.shard)@\($0.node): \($0.reason)" }.sorted()
            throw RPCError.failedPrecondition("build \(request.buildID) is not ready on every replica; the cluster keeps its build. " + list.joined(separator: "; "))
        }
        let updated = try await update { map in map.build = request.buildID }
        logger.info("build activated", metadata: ["cluster.build": "\(request.buildID)", "cluster.epoch": "\(updated.epoch)"])
        var response = Sparrow_V1_ActivateBuildResponse()
        response.epoch = updated.epoch
        response.notActivated = await withTaskGroup(of: Sparrow_V1_ShardFailure?.self) { group in
            for replica in replicas {
                group.addTask {
                    var activate = Sparrow_V1_ActivateBundleRequest()
                    activate.shard = replica.shard
                    activate.buildID = request.buildID
                    activate.epoch = updated.epoch
                    do {
                        _ = try await self.client(replica.node).call(
                            ShardMethod.activateBundle, activate, timeout: .seconds(60), as: Sparrow_V1_ActivateBundleResponse.self)
                        return nil
                    } catch {
                        return Self.failure(replica.shard, replica.node, "\(error)")
                    }
                }
            }
            return await group.reduce(into: [Sparrow_V1_ShardFailure]()) { if let failure = $1 { $0.append(failure) } }
        }
        return response
    }

    /// nil when `node` serves or has prepared `build` of `shard`, else why not.
    private func checkPrepared(_ shard: String, on node: String, build: String) async -> Sparrow_V1_ShardFailure? {
        var request = Sparrow_V1_StatsRequest()
        request.shard = shard
        do {
            let response = try await client(node).call(ShardMethod.stats, request, timeout: .seconds(10), as: Sparrow_V1_StatsResponse.self)
            guard let stats = response.shards.first, stats.buildID == build || stats.preparedBuildID == build else {
                return Self.failure(shard, node, "has not prepared it")
            }
            return nil
        } catch {
            return Self.failure(shard, node, "\(error)")
        }
    }

    private static func failure(_ shard: String, _ node: String, _ reason: String) -> Sparrow_V1_ShardFailure {
        var failure = Sparrow_V1_ShardFailure()
        failure.shard = shard
        failure.node = node
        failure.reason = reason
        return failure
    }
}
