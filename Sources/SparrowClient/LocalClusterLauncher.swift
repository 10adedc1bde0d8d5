import Foundation
import SparrowCoordinator
import SparrowCore
import SparrowSecurity
import SparrowStorage
import SparrowWire

/// A whole cluster on this machine (`sparrow local up`): shard processes and a coordinator on
/// 127.0.0.1, on free ports, each a detached `sparrow … serve` process logging to DATA/NAME/log.
/// With `vectors`, the documents are first split over the shards by a stable hash of their id
/// and built with one quantization scale (so that scores compare exactly across shards); replica
/// r of shard s lives on node (s + r) mod `nodes`.
public struct LocalClusterLauncher: Sendable {
    public var shards: Int
    public var nodes: Int
    public var replicas = 1
    /// The folder of the nodes' data, the logs, cluster.yaml and local.json.
    public var data: String
    /// A vectors file ({"id", "vector"} JSONL, optionally .gz) to split over the shards and load.
    public var vectors: String?
    /// A model folder (tokenizer and idf.json) for text queries, and the IDF table if elsewhere.
    public var model: String?
    public var idf: String?
    /// The query weighting: nil (IDF) or "bm25".
    public var weighting: String?
    /// TLS between every process under a fresh CA, and API keys (DATA/security/).
    public var secure = false
    /// The coordinator's `--search-concurrency`: "auto" or a number.
    public var searchConcurrency = "auto"
    /// The `sparrow` executable the servers run.
    public var binary: String
    /// A command every server runs under (such as `taskset -c 0`); empty: none.
    public var wrapper: [String] = []

    public init(shards: Int, nodes: Int? = nil, data: String, binary: String) {
        self.shards = shards
        self.nodes = nodes ?? shards
        self.data = data
        self.binary = binary
    }

    /// The node ids, and the nodes of each shard's replicas.
    public var layout: (nodes: [String], placement: [[String]]) {
        let nodes = (0..<nodes).map { "node-\($0)" }
        return (nodes, (0..<shards).map { shard in (0..<replicas).map { nodes[(shard + $0) % nodes.count] } })
    }

    /// Starts the cluster; `progress` hears each loaded shard. On failure, whatever started is killed.
    public func up(progress: (String) -> Void = { _ in }) throws -> LocalCluster {
        guard shards > 0, nodes > 0, (1...nodes).contains(replicas) else {
            throw LocalClusterError("a local cluster needs at least 1 shard and 1 node, and 1 to \(nodes) replicas (asked: \(shards), \(nodes), \(replicas))")
        }
        if FileManager.default.fileExists(atPath: LocalCluster.path(data)) {
            throw LocalClusterError("\(LocalCluster.path(data)) exists: a local cluster is up there (sparrow local down --data \(data))")
        }
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let (nodes, placement) = layout
        if let vectors { try load(vectors, placement: placement, progress: progress) }
        let security = secure ? try LocalSecuritySetup.make(in: data, nodes: nodes) : nil
        var started: [LocalCluster.Process] = []
        do {
            var addresses: [String: String] = [:]
            for node in nodes {
                let directory = (data as NSString).appendingPathComponent(node)
                let tls = security?.tlsArguments(PeerIdentity(role: .node, id: node)) ?? []
                let server = try Self.startDetached(
                    wrapper + [binary, "shard", "serve", "--data", directory, "--port", "0", "--node-id", node] + tls, name: node, in: directory)
                started.append(server.process)
                addresses[node] = "127.0.0.1:\(server.ports["rpc"]!)"
            }
            let map = ClusterMap(
                epoch: 1, nodes: nodes.map { .init(id: $0, address: addresses[$0]!) },
                shards: placement.enumerated().map { .init(id: ShardPartitioner.shardID($0.offset), replicas: $0.element) },
                encoder: model.map {
                    .init(model: ($0 as NSString).standardizingPath, idf: idf.map { ($0 as NSString).standardizingPath }, weighting: weighting)
                })
            let clusterFile = (data as NSString).appendingPathComponent("cluster.yaml")
            try map.yaml().write(toFile: clusterFile, atomically: false, encoding: .utf8)
            let secured = security.map { $0.tlsArguments(PeerIdentity(role: .coordinator, id: "coordinator")) + ["--api-keys", $0.keysFile] } ?? []
            let server = try Self.startDetached(
                wrapper + [binary, "coordinator", "serve", "--cluster", clusterFile, "--port", "0", "--http-port", "0", "--search-concurrency", searchConcurrency]
                    + secured,
                name: "coordinator", in: (data as NSString).appendingPathComponent("coordinator"))
            started.append(server.process)
            let cluster = LocalCluster(
                processes: started, coordinatorRPC: "127.0.0.1:\(server.ports["rpc"]!)",
                coordinatorHTTP: "\(security == nil ? "http" : "https")://127.0.0.1:\(server.ports["http"]!)", clusterFile: clusterFile, security: security)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try SecurityFiles.write(String(decoding: try encoder.encode(cluster), as: UTF8.self), to: LocalCluster.path(data), private: security != nil)
            return cluster
        } catch {
            for process in started { kill(process.pid, SIGKILL) }
            throw error
        }
    }

    /// Stops the cluster started in `data`: SIGTERM, the coordinator first (so that no query is
    /// sent to a node going away), then SIGKILL after `grace` for any still there (`killed`
    /// hears of each). Returns the processes it stopped.
    @discardableResult
    public static func down(data: String, grace: TimeInterval = 15, killed: (LocalCluster.Process) -> Void = { _ in }) throws -> [LocalCluster.Process] {
        let cluster = try LocalCluster.load(data: data)
        for process in cluster.processes.reversed() { kill(process.pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline && cluster.processes.contains(where: { kill($0.pid, 0) == 0 }) { usleep(50_000) }
        for process in cluster.processes where kill(process.pid, 0) == 0 {
            killed(process)
            kill(process.pid, SIGKILL)
        }
        try FileManager.default.removeItem(atPath: LocalCluster.path(data))
        return cluster.processes
    }

    /// Splits the vectors over the shards and builds every replica's copy.
    func load(_ vectors: String, placement: [[String]], progress: (String) -> Void) throws {
        let (parts, scale) = ShardBuilder.partition(try TokenVectorRecord.readAll(path: vectors), count: shards)
        for (shard, replicas) in placement.enumerated() {
            for node in replicas {
                let directory = ((data as NSString).appendingPathComponent(node) as NSString).appendingPathComponent("shards/\(ShardPartitioner.shardID(shard))")
                try ShardBuilder.build(records: parts[shard], directory: directory, shardID: ShardPartitioner.shardID(shard), quantizationScale: scale)
            }
            progress("loaded \(ShardPartitioner.shardID(shard)): \(parts[shard].count) documents on \(replicas.joined(separator: ", "))")
        }
    }

    /// Starts `command` (a `sparrow … serve`, perhaps under a wrapper) detached, in its own
    /// session so that a terminal's Ctrl-C does not reach it (`setsid` may fork, so the server
    /// reports its own pid), logging to DIR/log, and waits up to 60 s for the ports and pid it
    /// writes to the port file (given here, in DIR).
    static func startDetached(_ command: [String], name: String, in directory: String) throws -> (process: LocalCluster.Process, ports: [String: Int]) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let log = (directory as NSString).appendingPathComponent("log")
        let portFile = (directory as NSString).appendingPathComponent("ports.json")
        let quoted = (command + ["--port-file", portFile]).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let launcher = Foundation.Process()
        launcher.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        launcher.arguments = ["/bin/sh", "-c", "exec \(quoted) >>'\(log)' 2>&1 </dev/null"]
        try? FileManager.default.removeItem(atPath: portFile)
        try launcher.run()
        guard let ports = ServerPorts.wait(portFile, within: 60, running: { launcher.isRunning || launcher.terminationStatus == 0 }), let pid = ports["pid"] else {
            let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
            throw LocalClusterError("\(name) did not start (no ports in \(portFile) within 60 s); its log (\(log)) ends:\n\(tail)")
        }
        return (.init(name: name, pid: Int32(pid), log: log), ports)
    }
}

/// The port file a server writes once it listens (`--port-file`): {"rpc", "http"?, "pid"}.
public enum ServerPorts {
    /// The ports in `portFile` once the server wrote them (with its pid), or nil after `within`
    /// seconds or as soon as `running` says the server is gone.
    public static func wait(_ portFile: String, within: TimeInterval, running: () -> Bool) -> [String: Int]? {
        let deadline = Date().addingTimeInterval(within)
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: portFile),
               let ports = try? JSONSerialization.jsonObject(with: data) as? [String: Int], ports["pid"] != nil, ports["rpc"] != nil {
                return ports
            }
            guard running() else { return nil }
            usleep(20_000)
        }
        return nil
    }
}
