import Foundation
import Metrics
import ServiceLifecycle

/// Asks every node for its health at a fixed interval. A node that does not answer is marked down and its replicas are skipped
/// by searches until it answers again.
public struct HealthChecker: Service {
    let coordinator: Coordinator
    let interval: Duration

    public init(coordinator: Coordinator, interval: Duration) {
        self.coordinator = coordinator
        self.interval = interval
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await coordinator.checkNodes(timeout: min(interval, .milliseconds(500)))
                try await Task.sleep(for: interval)
            }
        }
    }
}

extension Coordinator {
    /// Checks every node once and records which are down (node id → reason).
    func checkNodes(timeout: Duration) async {
        let health = await nodeHealth(timeout: timeout)
        let changes = down.withLock { down -> [(node: String, reason: String?)] in
            var changes: [(node: String, reason: String?)] = []
            for (node, answer) in health {
                let reason: String? = if case .failure(let error) = answer { error.reason } else { nil }
                guard (down[node] == nil) != (reason == nil) else { continue }
                changes.append((node, reason))
                down[node] = reason
            }
            return changes
        }
        for change in changes {
            if let reason = change.reason {
                logger.warning("node down: its replicas are skipped", metadata: ["node.id": "\(change.node)", "error": "\(reason)"])
                Counter(label: "sparrow_coordinator_node_down_total", dimensions: [("node", change.node)]).increment()
            } else {
                logger.info("node up again", metadata: ["node.id": "\(change.node)"])
            }
        }
        // A node found down gets a new connection at its next call: the old one may be stuck
        // behind a partition that heals later (TCP's retransmissions back off to many seconds),
        // and would hold every call to it until the next retransmission. Once, when it goes down.
        for change in changes where change.reason != nil { await forgetClient(change.node) }
        Gauge(label: "sparrow_coordinator_nodes_down").record(down.withLock { $0.count })
        Gauge(label: "sparrow_coordinator_stale_replicas").record(cluster.shards.reduce(0) { $0 + ($1.stale?.count ?? 0) })
        repairStaleReplicas()
        dropOrphans(served: health.compactMapValues { try? $0.get() })
    }

    /// Why `node` is marked down, or nil when it is up.
    func downReason(_ node: String) -> String? { down.withLock { $0[node] } }
}
