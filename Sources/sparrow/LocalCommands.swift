import ArgumentParser
import Foundation
import SparrowClient

struct LocalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "A whole cluster on this machine (127.0.0.1, free ports): shard processes and a coordinator.",
        subcommands: [LocalUpCommand.self, LocalDownCommand.self]
    )
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
            var launcher = LocalClusterLauncher(
                shards: shards, nodes: nodeCount, data: data, binary: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            launcher.replicas = replicas
            (launcher.vectors, launcher.model, launcher.idf) = (vectors, model, idf)
            launcher.weighting = weighting == "idf" ? nil : weighting
            launcher.secure = secure
            launcher.searchConcurrency = searchConcurrency.argument
            let cluster = try launcher.up { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            let access = cluster.security.map { " --tls-ca \($0.ca) --api-key \($0.keys["read"]!)" } ?? ""
            print("""
            cluster up: \(shards) shard(s) × \(replicas) replica(s) on \(nodeCount) node(s)\(secure ? ", TLS and API keys on" : "")
              coordinator (protobuf/TCP): \(cluster.coordinatorRPC)
              coordinator (HTTP):         \(cluster.coordinatorHTTP)   (POST /v1/search, GET /v1/cluster, /healthz, /metrics, /v1/openapi.json; the console at /)
              cluster file:               \(cluster.clusterFile)
              logs:                       \(data)/*/log
            query:  sparrow query --coordinator \(cluster.coordinatorRPC)\(access) "your question"
            stop:   sparrow local down --data \(data)
            """)
            if let security = cluster.security {
                print("""
                keys (read, write, admin) and the admin certificate: \(LocalCluster.path(data)) and \(security.keysFile)
                ctl:    sparrow ctl status --coordinator \(cluster.coordinatorRPC) --tls-ca \(security.ca) --tls-cert \(security.adminCertificate) --tls-key \(security.adminKey)
                """)
            }
        }
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
            let stopped = try LocalClusterLauncher.down(data: data) { process in
                FileHandle.standardError.write(Data("\(process.name) (pid \(process.pid)) ignored SIGTERM; killing it\n".utf8))
            }
            print("cluster in \(data) stopped (\(stopped.count) processes)")
        }
    }
}
