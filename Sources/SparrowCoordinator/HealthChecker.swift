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
            for (node, reason) in health where (down[node] == nil) != (reason == nil) {
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
        Gauge(label: "sparrow_coordinator_nodes_down").record(down.withLock { $0.count })
    }

    /// Why `node` is marked down, or nil when it is up.
    func downReason(_ node: String) -> String? { down.withLock { $0[node] } }
}
