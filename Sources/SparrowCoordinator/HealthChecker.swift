import Foundation
import Metrics
import ServiceLifecycle
import SparrowWire

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
    /// Asks every node for its health: node id → its answer (the shards it serves, the highest
    /// epoch it has seen), or why it is down.
    public func nodeHealth(timeout: Duration = .milliseconds(500)) async -> [String: Result<Sparrow_V1_HealthResponse, NodeDown>] {
        var request = Sparrow_V1_HealthRequest()
        let cluster = self.cluster
        request.epoch = cluster.epoch
        let health = request
        return await withTaskGroup(of: (String, Result<Sparrow_V1_HealthResponse, NodeDown>).self) { group in
            for node in cluster.nodes.map(\.id) {
                group.addTask {
                    guard let client = try? self.client(node) else { return (node, .failure(NodeDown(reason: "no address"))) }
                    do {
                        return (node, .success(try await client.call(ShardMethod.health, health, timeout: timeout, as: Sparrow_V1_HealthResponse.self)))
                    } catch {
                        return (node, .failure(NodeDown(reason: "\(error)")))
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
    }

    public struct NodeDown: Error, Equatable {
        public var reason: String
    }

    /// Each node's state as the last health checks found it (node id → nil when up, else why
    /// not), without calling any node.
    public var nodeStates: [String: String?] {
        let down = self.down.withLock { $0 }
        return Dictionary(uniqueKeysWithValues: cluster.nodes.map { ($0.id, down[$0.id]) })
    }

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
        for change in changes where change.reason != nil { await nodes.forget(change.node) }
        Gauge(label: "sparrow_coordinator_nodes_down").record(down.withLock { $0.count })
        Gauge(label: "sparrow_coordinator_stale_replicas").record(cluster.shards.reduce(0) { $0 + ($1.stale?.count ?? 0) })
        repairStaleReplicas()
        dropOrphans(served: health.compactMapValues { try? $0.get().shards })
    }

    /// Why `node` is marked down, or nil when it is up.
    func downReason(_ node: String) -> String? { down.withLock { $0[node] } }
}
