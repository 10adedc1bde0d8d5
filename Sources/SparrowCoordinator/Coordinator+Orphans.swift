import Foundation
import Metrics
import SparrowWire

/// Copies a node serves that the map does not give it: left by a move that switched while its
/// source was down, or by an abort (or a replaced stale copy) while the node was down. The
/// owner learns what each node serves from its health checks, shows such copies in the
/// cluster status, and drops each once it has been seen for `orphanGrace` (long enough for a
/// move or a catch-up in flight to have recorded the copy it is making).
extension Coordinator {
    struct OrphanKey: Hashable, Sendable {
        var shard: String
        var node: String
    }

    /// Notes the orphans among the copies each node serves (node id → shard ids) and starts
    /// dropping those seen for the grace period; on the owner only.
    func dropOrphans(served: [String: [String]]) {
        guard isOwner else { return }
        let cluster = self.cluster
        let found = Set(served.flatMap { node, shards in
            shards.filter { !Self.belongs($0, to: node, in: cluster) }.map { OrphanKey(shard: $0, node: node) }
        })
        let now = ContinuousClock.now
        let (new, due) = orphans.withLock { orphans -> ([OrphanKey], [OrphanKey]) in
            orphans = orphans.filter { found.contains($0.key) }
            let new = found.filter { orphans[$0] == nil }
            for key in new { orphans[key] = now }
            return (Array(new), orphans.filter { now - $0.value >= orphanGrace }.map(\.key))
        }
        for key in new {
            logger.warning("orphan copy: the node serves a shard the map does not give it; it is dropped after the grace period",
                           metadata: ["shard.id": "\(key.shard)", "node.id": "\(key.node)", "grace_s": "\(orphanGrace.components.seconds)"])
        }
        Gauge(label: "sparrow_coordinator_orphan_copies").record(found.count)
        for key in due where repairs.withLock({ $0.insert("drop:\(key.shard)@\(key.node)").inserted }) {
            Task {
                defer { _ = repairs.withLock { $0.remove("drop:\(key.shard)@\(key.node)") } }
                await dropOrphan(key)
            }
        }
    }

    /// Whether the map gives `node` its copy of `shard`, or a move is making it there.
    static func belongs(_ shard: String, to node: String, in cluster: ClusterMap) -> Bool {
        cluster.shard(shard)?.replicas.contains(node) == true || cluster.move(of: shard)?.to == node
    }

    /// Drops the copy, unless the map has given it a place since (checked as the one
    /// map-changing operation at a time, so no move can begin to use it meanwhile).
    private func dropOrphan(_ key: OrphanKey) async {
        do {
            try await operation {
                guard !Self.belongs(key.shard, to: key.node, in: self.cluster) else { return }
                try await self.dropShard(key.shard, on: key.node)
            }
            _ = orphans.withLock { $0.removeValue(forKey: key) }
            logger.info("orphan copy dropped", metadata: ["shard.id": "\(key.shard)", "node.id": "\(key.node)"])
        } catch {
            logger.warning("orphan copy not dropped; tried again after the next health check",
                           metadata: ["shard.id": "\(key.shard)", "node.id": "\(key.node)", "error": "\(error)"])
        }
    }

    /// The orphan copies known now, for the cluster status.
    var orphanCopies: [ClusterView.Orphan] {
        let now = ContinuousClock.now
        return orphans.withLock { $0 }.map { key, seen in
            ClusterView.Orphan(
                shard: key.shard, node: key.node, seenSeconds: UInt32(clamping: (now - seen).components.seconds),
                dropInSeconds: UInt32(clamping: max(0, (orphanGrace - (now - seen)).components.seconds)))
        }.sorted { ($0.shard, $0.node) < ($1.shard, $1.node) }
    }
}
