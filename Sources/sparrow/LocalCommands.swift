import ArgumentParser
import Foundation
import SparrowCoordinator
import SparrowCore
import SparrowSecurity
import SparrowStorage

struct LocalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "A whole cluster on this machine (127.0.0.1, free ports): shard processes and a coordinator.",
        subcommands: [LocalUpCommand.self, LocalDownCommand.self]
    )
}

/// What `local up` started, kept in DATA/local.json for `local down`.
struct LocalCluster: Codable {
    struct Process: Codable {
        var name: String
        var pid: Int32
        var log: String
    }

    /// With `--secure`: where the TLS material and keys are, and one key per scope.
    struct Security: Codable {
        var ca: String
        var adminCertificate: String
        var adminKey: String
        var keysFile: String
        var keys: [String: String]
    }

    var processes: [Process]
    var coordinatorRPC: String
    var coordinatorHTTP: String
    var clusterFile: String
    var security: Security?

    static func path(_ data: String) -> String { (data as NSString).appendingPathComponent("local.json") }
}

/// The secure setup of a local cluster: a CA, a certificate per process and an admin
/// certificate in DATA/security/, and a keys file with one key per scope.
enum LocalSecuritySetup {
    static func make(in data: String, nodes: [String]) throws -> LocalCluster.Security {
        let directory = (data as NSString).appendingPathComponent("security")
        let authority = try CertificateAuthority.create(name: "Sparrow local CA")
        try authority.save(certificatePath: directory + "/ca.pem", keyPath: directory + "/ca.key")
        let identities = nodes.map { PeerIdentity(role: .node, id: $0) } + [PeerIdentity(role: .coordinator, id: "coordinator"), PeerIdentity(role: .admin, id: "admin")]
        for identity in identities {
            let base = "\(directory)/\(identity.role.rawValue)-\(identity.id)"
            try authority.issue(identity, hosts: ["127.0.0.1", "localhost"], days: 30).save(certificatePath: base + ".pem", keyPath: base + ".key")
        }
        var file = APIKeysFile()
        let keys = Dictionary(uniqueKeysWithValues: KeyScope.allCases.map { ($0.rawValue, file.create(name: "local-\($0.rawValue)", scope: $0)) })
        try file.save(directory + "/keys.json")
        return LocalCluster.Security(
            ca: directory + "/ca.pem", adminCertificate: directory + "/admin-admin.pem", adminKey: directory + "/admin-admin.key",
            keysFile: directory + "/keys.json", keys: keys)
    }

    /// A process's TLS options: its certificate `role-id` in the setup's directory.
    static func tlsArguments(_ security: LocalCluster.Security, _ identity: PeerIdentity) -> [String] {
        let base = ((security.ca as NSString).deletingLastPathComponent as NSString).appendingPathComponent("\(identity.role.rawValue)-\(identity.id)")
        return ["--tls-ca", security.ca, "--tls-cert", base + ".pem", "--tls-key", base + ".key"]
    }
}

struct LocalUpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start shard processes and a coordinator on 127.0.0.1; write DATA/cluster.yaml; print the endpoints.",
        discussion: """
        With --vectors, the documents are first split over the shards by a stable hash of their id and \
        built with one quantization scale (so that scores compare exactly across shards); replica r of \
        shard s lives on node (s + r) mod NODES. Without it, the nodes serve whatever DATA/node-*/shards holds.
        """
    )

    @Option(help: "Number of shards.")
    var shards: Int

    @Option(help: "Number of shard processes (default: one per shard).")
    var nodes: Int?

    @Option(help: "Copies of each shard, on distinct nodes (at most the number of nodes).")
    var replicas: Int = 1

    @Option(help: "Data directory for the nodes, logs, the cluster file and local.json.")
    var data: String

    @Option(help: "Vectors file ({\"id\", \"vector\"} JSONL, optionally .gz) to split over the shards and load.")
    var vectors: String?

    @Option(help: "Model folder (tokenizer + idf.json) for text queries.")
    var model: String?

    @Option(help: "IDF table for text queries (default: MODEL/idf.json).")
    var idf: String?

    @Option(help: "Query weighting: idf, or bm25 for indexes built with `encode --weighting bm25` (every token 1).")
    var weighting: String = "idf"

    @Flag(help: "The full secure setup: TLS between every process under a fresh CA, and API keys (DATA/security/; one key per scope in DATA/local.json).")
    var secure = false

    @Option(help: "The coordinator's --search-concurrency: auto, or a fixed number of searches in progress.")
    var searchConcurrency: SearchConcurrency = .auto

    var nodeCount: Int { nodes ?? shards }

    func validate() throws {
        guard shards > 0 else { throw ValidationError("--shards must be at least 1") }
        guard nodeCount > 0 else { throw ValidationError("--nodes must be at least 1") }
        guard (1...nodeCount).contains(replicas) else { throw ValidationError("--replicas must be between 1 and the number of nodes (\(nodeCount))") }
        guard ["idf", "bm25"].contains(weighting) else { throw ValidationError("--weighting takes idf or bm25, not '\(weighting)'") }
    }

    func run() throws {
        try reportingErrors {
            if FileManager.default.fileExists(atPath: LocalCluster.path(data)) {
                throw ValidationError("\(LocalCluster.path(data)) exists: a local cluster is up there (sparrow local down --data \(data))")
            }
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            let nodes = (0..<nodeCount).map { "node-\($0)" }
            let placement = (0..<shards).map { shard in (0..<replicas).map { nodes[(shard + $0) % nodeCount] } }
            if let vectors { try load(vectors, nodes: nodes, placement: placement) }
            let security = secure ? try LocalSecuritySetup.make(in: data, nodes: nodes) : nil
            let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            var started: [LocalCluster.Process] = []
            var addresses: [String: String] = [:]
            do {
                for node in nodes {
                    let directory = (data as NSString).appendingPathComponent(node)
                    let ports = (directory as NSString).appendingPathComponent("ports.json")
                    let tls = security.map { LocalSecuritySetup.tlsArguments($0, PeerIdentity(role: .node, id: node)) } ?? []
                    let bound = try start(
                        binary, ["shard", "serve", "--data", directory, "--port", "0", "--node-id", node, "--port-file", ports] + tls, name: node, in: directory)
                    started.append(bound.process)
                    addresses[node] = "127.0.0.1:\(bound.ports["rpc"]!)"
                }
                let map = ClusterMap(
                    epoch: 1, nodes: nodes.map { .init(id: $0, address: addresses[$0]!) },
                    shards: placement.enumerated().map { .init(id: ShardPartitioner.shardID($0.offset), replicas: $0.element) },
                    encoder: model.map {
                        .init(model: ($0 as NSString).standardizingPath, idf: idf.map { ($0 as NSString).standardizingPath },
                              weighting: weighting == "idf" ? nil : weighting)
                    })
                let clusterFile = (data as NSString).appendingPathComponent("cluster.yaml")
                try map.yaml().write(toFile: clusterFile, atomically: false, encoding: .utf8)
                let directory = (data as NSString).appendingPathComponent("coordinator")
                let ports = (directory as NSString).appendingPathComponent("ports.json")
                let secured = security.map { LocalSecuritySetup.tlsArguments($0, PeerIdentity(role: .coordinator, id: "coordinator")) + ["--api-keys", $0.keysFile] } ?? []
                let bound = try start(
                    binary, ["coordinator", "serve", "--cluster", clusterFile, "--port", "0", "--http-port", "0", "--port-file", ports,
                             "--search-concurrency", searchConcurrency.argument] + secured,
                    name: "coordinator", in: directory)
                started.append(bound.process)
                let scheme = security == nil ? "http" : "https"
                let cluster = LocalCluster(
                    processes: started, coordinatorRPC: "127.0.0.1:\(bound.ports["rpc"]!)", coordinatorHTTP: "\(scheme)://127.0.0.1:\(bound.ports["http"]!)",
                    clusterFile: clusterFile, security: security)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let path = LocalCluster.path(data)
                try SecurityFiles.write(String(decoding: try encoder.encode(cluster), as: UTF8.self), to: path, private: security != nil)
                let access = security.map { " --tls-ca \($0.ca) --api-key \($0.keys["read"]!)" } ?? ""
                print("""
                cluster up: \(shards) shard(s) × \(replicas) replica(s) on \(nodes.count) node(s)\(security == nil ? "" : ", TLS and API keys on")
                  coordinator (protobuf/TCP): \(cluster.coordinatorRPC)
                  coordinator (HTTP):         \(cluster.coordinatorHTTP)   (POST /v1/search, GET /v1/cluster, /healthz, /metrics)
                  cluster file:               \(clusterFile)
                  logs:                       \(data)/*/log
                query:  sparrow query --coordinator \(cluster.coordinatorRPC)\(access) "your question"
                stop:   sparrow local down --data \(data)
                """)
                if let security {
                    print("""
                    keys (read, write, admin) and the admin certificate: \(path) and \(security.keysFile)
                    ctl:    sparrow ctl status --coordinator \(cluster.coordinatorRPC) --tls-ca \(security.ca) --tls-cert \(security.adminCertificate) --tls-key \(security.adminKey)
                    """)
                }
            } catch {
                for process in started { kill(process.pid, SIGKILL) }
                throw error
            }
        }
    }

    /// Splits the vectors over the shards and bulk-loads every replica.
    func load(_ vectors: String, nodes: [String], placement: [[String]]) throws {
        let (parts, scale) = ShardBuilder.partition(try TokenVectorRecord.readAll(path: vectors), count: shards)
        for (shard, replicas) in placement.enumerated() {
            for node in replicas {
                let directory = ((data as NSString).appendingPathComponent(node) as NSString)
                    .appendingPathComponent("shards/\(ShardPartitioner.shardID(shard))")
                try ShardBuilder.build(records: parts[shard], directory: directory, shardID: ShardPartitioner.shardID(shard), quantizationScale: scale)
            }
            FileHandle.standardError.write(Data("loaded \(ShardPartitioner.shardID(shard)): \(parts[shard].count) documents on \(replicas.joined(separator: ", "))\n".utf8))
        }
    }

    /// Starts a detached server process (its own session, so that a terminal's Ctrl-C does not
    /// reach it; `setsid` may fork, so the server reports its own pid) logging to DIR/log, and
    /// waits (up to 60 s) for the ports and pid it writes to `portFile`.
    func start(_ binary: String, _ arguments: [String], name: String, in directory: String) throws -> (process: LocalCluster.Process, ports: [String: Int]) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let log = (directory as NSString).appendingPathComponent("log")
        let portFile = arguments[arguments.firstIndex(of: "--port-file")! + 1]
        try? FileManager.default.removeItem(atPath: portFile)
        let quoted = ([binary] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let launcher = Process()
        launcher.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        launcher.arguments = ["/bin/sh", "-c", "exec \(quoted) >>'\(log)' 2>&1 </dev/null"]
        try launcher.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: portFile),
               let ports = try? JSONSerialization.jsonObject(with: data) as? [String: Int], let pid = ports["pid"] {
                return (.init(name: name, pid: Int32(pid), log: log), ports)
            }
            if !launcher.isRunning && launcher.terminationStatus != 0 { break }
            usleep(20_000)
        }
        let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
        throw ValidationError("\(name) did not start (no ports in \(portFile) within 60 s); its log (\(log)) ends:\n\(tail)")
    }
}

struct LocalDownCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Stop the local cluster started in DATA (SIGTERM, then SIGKILL after 15 s)."
    )

    @Option(help: "The data directory given to `local up`.")
    var data: String

    func run() throws {
        try reportingErrors {
            let path = LocalCluster.path(data)
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw ValidationError("no local cluster in \(data) (\(path) is missing)")
            }
            let cluster = try JSONDecoder().decode(LocalCluster.self, from: contents)
            // The coordinator first, so that no query is sent to a node that is going away.
            for process in cluster.processes.reversed() { kill(process.pid, SIGTERM) }
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline && cluster.processes.contains(where: { kill($0.pid, 0) == 0 }) { usleep(50_000) }
            for process in cluster.processes where kill(process.pid, 0) == 0 {
                FileHandle.standardError.write(Data("\(process.name) (pid \(process.pid)) ignored SIGTERM; killing it\n".utf8))
                kill(process.pid, SIGKILL)
            }
            try FileManager.default.removeItem(atPath: path)
            print("cluster in \(data) stopped (\(cluster.processes.count) processes)")
        }
    }
}
