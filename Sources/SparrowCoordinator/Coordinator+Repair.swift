import Foundation
import Logging
import Metrics
import SparrowCore
import SparrowWire

/// Catching up a stale replica (one that missed acknowledged writes, see `InSyncSet`), on the
/// owner of the map, once its node answers health checks again:
/// 1. it replays an in-sync replica's change log from its own tail, while writes go on;
/// 2. with the shard's writes held at the gate, it replays the last changes, and the map takes
///    it back into the in-sync set (epoch + 1): it serves searches and takes writes again.
/// When its log does not match the in-sync replica's (it holds a write the others never
/// acknowledged, or the log it needs was compacted away, or it serves another build), it is
/// taken out of the shard's replicas and copied afresh, as a move adds a replica.
extension Coordinator {
    /// Starts catching up every stale replica whose node is up and not being moved; one repair
    /// per replica at a time.
    func repairStaleReplicas() {
        guard isOwner else { return }
        let cluster = self.cluster
        for shard in cluster.shards where cluster.move(of: shard.id) == nil {
            for node in shard.stale ?? [] where downReason(node) == nil {
                let key = "\(shard.id)@\(node)"
                guard repairs.withLock({ $0.insert(key).inserted }) else { continue }
                Task {
                    defer { _ = repairs.withLock { $0.remove(key) } }
                    do {
                        try await repair(shard.id, on: node)
                    } catch {
                        logger.warning("replica catch-up failed; tried again after the next health check",
                                       metadata: ["shard.id": "\(shard.id)", "node.id": "\(node)", "error": "\(error)"])
                        Counter(label: "sparrow_coordinator_repairs_total", dimensions: [("outcome", "failed")]).increment()
                    }
                }
            }
        }
    }

    private func repair(_ shard: String, on node: String) async throws {
        let fields: Logger.Metadata = ["shard.id": "\(shard)", "node.id": "\(node)"]
        logger.info("replica catching up", metadata: fields)
        if case .diverged(let reason) = try await replay(shard, from: try inSyncSource(of: shard), to: node) {
            return try await recopy(shard, on: node, because: reason)
        }
        let caughtUp = try await gate(shard).run { () async throws -> Bool in
            guard self.cluster.shard(shard)?.stale?.contains(node) == true else { return false }
            if case .diverged(let reason) = try await self.replay(shard, from: try self.inSyncSource(of: shard), to: node) {
                throw RPCError.failedPrecondition("\(node)'s copy of \(shard) stopped matching during its catch-up: \(reason)")
            }
            try await self.update { map in
                guard let index = map.shards.firstIndex(where: { $0.id == shard }) else { return }
                map.shards[index].markInSync(node)
            }
            return true
        }
        guard caughtUp else { return }
        logger.info("replica caught up: in sync again", metadata: fields.merging(["cluster.epoch": "\(cluster.epoch)"]) { $1 })
        Counter(label: "sparrow_coordinator_repairs_total", dimensions: [("outcome", "replayed")]).increment()
    }

    /// An in-sync replica of `shard` whose node is up.
    private func inSyncSource(of shard: String) throws -> String {
        guard let source = cluster.shard(shard)?.inSync.first(where: { downReason($0) == nil }) else {
            throw RPCError.failedPrecondition("no in-sync replica of \(shard) is up to catch up from")
        }
        return source
    }

    /// Replaces a copy whose log does not match by a fresh one: out of the replicas, then added
    /// back by a move (copy, catch-up, switch), as one map-changing operation.
    private func recopy(_ shard: String, on node: String, because reason: String) async throws {
        logger.warning("replica copied afresh: its change log does not match the in-sync replicas'",
                       metadata: ["shard.id": "\(shard)", "node.id": "\(node)", "error": "\(reason)"])
        try await operation {
            _ = try await self.gate(shard).run {
                try await self.update { map in
                    guard let index = map.shards.firstIndex(where: { $0.id == shard }), map.shards[index].stale?.contains(node) == true else {
                        throw RPCError.failedPrecondition("\(node) is no longer a stale replica of \(shard)")
                    }
                    map.shards[index].replicas.removeAll { $0 == node }
                    map.shards[index].markInSync(node)
                }
            }
            try await self.runMove(shard: shard, from: nil, to: node, rate: 0)
        }
        Counter(label: "sparrow_coordinator_repairs_total", dimensions: [("outcome", "copied")]).increment()
    }

    enum ReplayOutcome: Equatable {
        case caughtUp
        /// The target's log does not continue the source's: it needs a fresh copy.
        case diverged(String)
    }

    /// Replays on `target` every change `source` has after the target's tail, once the source's
    /// log shows that it holds the target's last change (same sequence, same write, same build).
    func replay(_ shard: String, from source: String, to target: String) async throws -> ReplayOutcome {
        let (sourceClient, targetClient) = (try client(source), try client(target))
        var stats = Sparrow_V1_StatsRequest()
        stats.shard = shard
        guard let held = try await targetClient.call(ShardMethod.stats, stats, timeout: .seconds(30), as: Sparrow_V1_StatsResponse.self).shards.first else {
            throw RPCError(.internal, "\(target) reports no copy of \(shard)")
        }
        var read = Sparrow_V1_ReadChangesRequest()
        read.shard = shard
        read.after = held.lastChange
        var first = true
        while true {
            let changes = try await sourceClient.call(ShardMethod.readChanges, read, timeout: .seconds(60), as: Sparrow_V1_ReadChangesResponse.self)
            if first, let reason = InSyncSet.mismatch(held, changes, source: source, target: target) { return .diverged(reason) }
            first = false
            guard !changes.changes.isEmpty else { return .caughtUp }
            var apply = Sparrow_V1_ApplyChangesRequest()
            apply.shard = shard
            apply.changes = changes.changes
            apply.epoch = cluster.epoch
            read.after = try await targetClient.call(ShardMethod.applyChanges, apply, timeout: .seconds(60), as: Sparrow_V1_ApplyChangesResponse.self).lastChange
        }
    }
}
