import ArgumentParser
import Foundation
import SparrowClient
import Hummingbird
import Logging
import NIOCore
import HummingbirdTLS
import ServiceLifecycle
import SparrowCoordinator
import SparrowCore
import SparrowSecurity
import SparrowEncoder
import SparrowEtcd
import SparrowShard
import SparrowWire

struct ShardServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the shards under DATA/shards over protobuf/TCP until SIGTERM or SIGINT."
    )

    @Option(help: "Data directory: shards live in DATA/shards/<shard id>/.")
    var data: String

    @OptionGroup var server: ServerOptions

    @Option(help: "TCP port (0: any free port; see --port-file).")
    var port: Int = 7100

    @Option(help: "Node id in logs and health answers (default: host:port).")
    var nodeID: String?

    @Option(help: "HTTP port for /metrics and /healthz (none by default).")
    var metricsPort: Int?

    @Option(help: "RocksDB block cache per shard, MiB.")
    var cacheMb: Int = 64

    @Option(help: "Unfinished bundle uploads and bulk loads the node holds at most, MiB.")
    var maxStagedMb: Int = 64 << 10

    @Option(help: "An unfinished upload or bulk load that receives nothing for this long is dropped, seconds.")
    var stagedTtlSeconds: Int = 3600

    @Option(help: "Free space kept on the data directory's file system, MiB: writes, uploads and copies that would leave less are refused (RESOURCE_EXHAUSTED); searches go on.")
    var minFreeDiskMb: Int = 1024

    @OptionGroup var security: ServerSecurityOptions

    func run() async throws {
        ServerRuntime.runTasksOnEventLoops()
        let logger = try ServerRuntime.logger("sparrow.shard", level: server.logLevel)
        let tls = try security.identity()
        try security.checkExposure(host: server.host, missing: tls == nil ? ["TLS"] : [], logger: logger)
        if let identity = tls?.identity, identity.role != .node {
            throw ValidationError("--tls-cert names \(identity), not a node: issue one with `sparrow certs issue --role node`")
        }
        let metricsText = ServerRuntime.metrics()
        let staging = StagingLimits(maxBytes: maxStagedMb << 20, ttl: .seconds(stagedTtlSeconds), minFreeBytes: minFreeDiskMb << 20)
        let node = try ShardNode(
            nodeID: nodeID ?? tls?.identity?.id ?? "\(server.host):\(port)", dataDirectory: data, cacheMegabytes: cacheMb, staging: staging, logger: logger)
        if let identity = tls?.identity, identity.id != node.nodeID {
            throw ValidationError("--node-id \(node.nodeID) differs from the id its certificate names (\(identity.id))")
        }
        let rpc = try await RPCServer.bind(
            Endpoint(host: server.host, port: port), service: InstrumentedService(node.routes),
            security: ServerSecurity(tls: tls, clientCertificates: .required, policy: tls == nil ? nil : .shardNode), limits: server.limits,
            frameLimit: server.frameLimit, logger: logger)
        try ServerRuntime.writePorts(["rpc": rpc.address.port], to: server.portFile)
        logger.info("shard node serving", metadata: [
            "node.id": "\(node.nodeID)", "rpc.address": "\(rpc.address)", "node.shards": "\(node.shardIDs)", "rpc.tls": "\(tls != nil)",
        ])
        let reload = CertificateReload.onHangup(tls, logger: logger)
        defer { reload?.cancel() }
        var services: [any Service] = [rpc, Periodic(every: .seconds(max(1, min(60, stagedTtlSeconds / 4)))) { _ = node.expireStaging() }]
        if let metricsPort {
            services.append(try ServerRuntime.metricsApplication(host: server.host, port: metricsPort, tls: tls, text: metricsText, logger: logger))
        }
        try await ServerRuntime.run(services, logger: logger)
        node.close()
    }
}

/// Options every server command takes.
struct ServerOptions: ParsableArguments {
    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Largest frame accepted or sent on the protobuf/TCP port, MiB.")
    var maxFrameMb: Int = 16

    @Option(help: "Write the bound ports and process id here as JSON {\"rpc\": port, \"http\"?: port, \"pid\": pid}.")
    var portFile: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @Option(help: "Connections open at once on the protobuf/TCP port; more are closed as they arrive.")
    var maxConnections: Int = ConnectionLimits().maxConnections

    @Option(help: "Close a connection with no call in flight and no traffic for this long, seconds.")
    var idleTimeoutSeconds: Int = Int(ConnectionLimits().idleTimeout.seconds)

    @Option(help: "A frame whose first byte arrived must be complete within this, seconds.")
    var frameTimeoutSeconds: Int = Int(ConnectionLimits().frameTimeout.seconds)

    @Option(help: "Calls in flight on one connection; more are refused at once (RESOURCE_EXHAUSTED).")
    var maxInFlight: Int = ConnectionLimits().maxInFlight

    @Option(help: "Calls in progress on the whole server (a node's searches, answered at once, do not count); more are refused at once (RESOURCE_EXHAUSTED, HTTP 429).")
    var maxCallsInProgress: Int = ConnectionLimits().maxCallsInProgress

    @Option(help: "MiB of frames still arriving, over all connections (at least one whole frame); a connection whose frame would take more is closed.")
    var maxPartialFramesMb: Int = ConnectionLimits().maxPartialFrameBytes >> 20

    var frameLimit: Int { maxFrameMb << 20 }

    func validate() throws {
        guard maxConnections > 0, idleTimeoutSeconds > 0, frameTimeoutSeconds > 0, maxInFlight > 0, maxCallsInProgress > 0, maxPartialFramesMb > 0,
              maxFrameMb > 0 else {
            throw ValidationError(
                "--max-connections, --idle-timeout-seconds, --frame-timeout-seconds, --max-in-flight, --max-calls-in-progress, --max-partial-frames-mb and --max-frame-mb must be at least 1")
        }
    }

    var limits: ConnectionLimits {
        ConnectionLimits(
            maxConnections: maxConnections, idleTimeout: .seconds(idleTimeoutSeconds), frameTimeout: .seconds(frameTimeoutSeconds),
            maxInFlight: maxInFlight, outboundHighWater: max(4 << 20, frameLimit), maxCallsInProgress: maxCallsInProgress,
            maxPartialFrameBytes: maxPartialFramesMb << 20)
    }
}

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "The query API: fan out to the shards, merge, report coverage.",
        subcommands: [CoordinatorServeCommand.self, CoordinatorOpenAPICommand.self]
    )
}

/// `sparrow coordinator openapi`: the HTTP API's OpenAPI document, as `/v1/openapi.json` serves it.
struct CoordinatorOpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi",
        abstract: "Print the OpenAPI 3.1 document of the coordinator's HTTP API (JSON), as GET /v1/openapi.json serves it."
    )

    func run() throws {
        FileHandle.standardOutput.write(try HTTPAPI.documentJSON() + Data("\n".utf8))
    }
}

/// `--search-concurrency`: `auto` or a fixed number of searches in progress.
enum SearchConcurrency: ExpressibleByArgument, Equatable {
    case auto
    case fixed(Int)

    init?(argument: String) {
        if argument == "auto" {
            self = .auto
        } else if let limit = Int(argument), limit > 0 {
            self = .fixed(limit)
        } else {
            return nil
        }
    }

    /// As given on the command line.
    var argument: String {
        switch self {
        case .auto: "auto"
        case .fixed(let limit): "\(limit)"
        }
    }

    func mode(tolerance: Double) -> SearchAdmission.Mode {
        switch self {
        case .fixed(let limit): return .fixed(limit)
        case .auto:
            var settings = AdaptiveLimit.Settings()
            settings.tolerance = tolerance
            return .adaptive(settings)
        }
    }
}

struct CoordinatorServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve HTTP/JSON and protobuf/TCP search over the cluster file's shards."
    )

    @Option(help: "Cluster file (YAML): nodes, shards and their replicas, epoch, encoder. With --etcd: the map to start the cluster with when etcd holds none yet.")
    var cluster: String?

    @OptionGroup var etcd: EtcdOptions

    @Option(help: "With --etcd: seconds the coordinator's lease lives without renewal; the owner's successor is elected within it once the owner is gone.")
    var etcdLeaseTtl: Int = 5

    @Option(help: "With --etcd: the protobuf/TCP address other processes reach this coordinator at, HOST:PORT (default: --host and the port bound).")
    var advertise: String?

    @OptionGroup var server: ServerOptions

    @Option(help: "Protobuf/TCP port (0: any free port).")
    var port: Int = 7000

    @Option(help: "HTTP port (0: any free port).")
    var httpPort: Int = 8080

    @Option(help: "Default per-query deadline, milliseconds.")
    var timeoutMs: Int = 2000

    @Option(help: "Health checks of every node, every this many milliseconds (0: none); nodes that do not answer are skipped.")
    var healthIntervalMs: Int = 1000

    @Option(help: "Copies a node serves that the map does not give it (left by a move or an abort while a node was down) are dropped once seen for this many seconds.")
    var orphanGraceSeconds: Int = 600

    @Option(help: "Searches in flight to one shard replica; searches beyond these wait and go out together, as one batch, when one comes back.")
    var callsPerReplica: Int = 2

    @Option(help: "Searches in progress at once: auto (adapted to their latency: past the limit, searches are refused with RESOURCE_EXHAUSTED / HTTP 429 while those let in keep close to the unloaded latency) or a fixed number.")
    var searchConcurrency: SearchConcurrency = .auto

    @Option(help: "With --search-concurrency auto: the multiple of the unloaded p90 latency at which the limit starts to shrink.")
    var searchTolerance: Double = AdaptiveLimit.Settings().tolerance

    @Option(help: "Follow the coordinator at HOST:PORT, which owns the map: fetch its map every 500 ms and serve searches from it; writes and map changes are refused here. The --cluster file gives the encoder and the map to start from, and keeps the latest one.")
    var follow: String?

    @Option(help: "API keys file (`sparrow keys create`): clients must present a key whose scope allows the call. Rereads it when it changes.")
    var apiKeys: String?

    @OptionGroup var security: ServerSecurityOptions

    func validate() throws {
        guard searchTolerance > 1 else { throw ValidationError("--search-tolerance must be above 1, not \(searchTolerance)") }
        guard cluster != nil || etcd.etcd != nil else { throw ValidationError("give the map: --cluster FILE, or --etcd (with --cluster-name)") }
        guard follow == nil || etcd.etcd == nil else { throw ValidationError("--follow and --etcd exclude each other: with etcd, coordinators elect their owner") }
        guard (1...3600).contains(etcdLeaseTtl) else { throw ValidationError("--etcd-lease-ttl must be 1 to 3600 seconds, not \(etcdLeaseTtl)") }
    }

    /// The map to start from: etcd's (seeded from `--cluster` when etcd holds none), or the file's.
    static func initialMap(file: String?, etcd: EtcdMapStore?, logger: Logger) async throws -> ClusterMap {
        guard let etcd else { return try ClusterMap.load(path: file!) }
        let seed = try file.map { try ClusterMap.load(path: $0) }
        for attempt in 1... {
            do {
                if let (map, _) = try await etcd.load() { return map }
                guard let seed else {
                    throw ValidationError("etcd holds no cluster map at \(etcd.keys.map): run `sparrow ctl migrate-map`, or start with --cluster FILE to seed it")
                }
                if try await etcd.create(seed) {
                    logger.notice("cluster map seeded in etcd from the file", metadata: ["cluster.file": "\(file!)", "etcd.key": "\(etcd.keys.map)"])
                }
            } catch let error as EtcdError {
                guard attempt < 30 else { throw error }
                logger.warning("etcd unavailable; waiting for the cluster map", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
        fatalError("unreachable")
    }

    func run() async throws {
        ServerRuntime.runTasksOnEventLoops()
        let logger = try ServerRuntime.logger("sparrow.coordinator", level: server.logLevel)
        let tls = try security.identity()
        try security.checkExposure(host: server.host, missing: (tls == nil ? ["TLS"] : []) + (apiKeys == nil ? ["API keys"] : []), logger: logger)
        if let identity = tls?.identity, identity.role != .coordinator {
            throw ValidationError("--tls-cert names \(identity), not a coordinator: issue one with `sparrow certs issue --role coordinator`")
        }
        let keys = try apiKeys.map { path in
            try APIKeyVerifier(path: path) { error in logger.error("cannot reread the API keys file; the keys in force stay", metadata: ["error": "\(error)"]) }
        }
        let metricsText = ServerRuntime.metrics()
        let etcdStore = try etcd.store(logger: logger)
        let map = try await Self.initialMap(file: cluster, etcd: etcdStore, logger: logger)
        let encoder = try map.encoder.map { try $0.load() }
        let coordinator = try Coordinator(
            cluster: map, store: etcdStore ?? FileMapStore(path: cluster, follows: follow), encoder: encoder, defaultTimeout: .milliseconds(timeoutMs),
            callsPerReplica: callsPerReplica, admission: searchConcurrency.mode(tolerance: searchTolerance), peers: ClientSecurity(tls: tls), orphanGrace: .seconds(orphanGraceSeconds), logger: logger)
        let checked = tls != nil || keys != nil
        let rpc = try await RPCServer.bind(
            Endpoint(host: server.host, port: port), service: InstrumentedService(coordinator.routes),
            security: ServerSecurity(tls: tls, clientCertificates: .optional, keys: keys, policy: checked ? .coordinator : nil),
            limits: server.limits, frameLimit: server.frameLimit, logger: logger)
        let rpcPort = rpc.address.port
        let portFile = server.portFile
        let router = try HTTPAPI.router(coordinator: coordinator, keys: keys, gate: rpc.gate, metricsText: metricsText)
        let onServerRunning: @Sendable (any Channel) async -> Void = { channel in
            let httpPort = channel.localAddress?.port ?? 0
            do {
                try ServerRuntime.writePorts(["rpc": rpcPort, "http": httpPort], to: portFile)
            } catch {
                logger.error("cannot write the port file", metadata: ["path": "\(portFile ?? "")", "error": "\(error)"])
            }
            logger.info("coordinator serving", metadata: [
                "rpc.address": "\(rpc.address)", "http.port": "\(httpPort)", "cluster.shards": "\(map.shards.count)", "cluster.epoch": "\(map.epoch)",
                "rpc.tls": "\(tls != nil)", "api_keys": "\(keys != nil)",
            ])
        }
        let configuration = ApplicationConfiguration(address: .hostname(server.host, port: httpPort), serverName: "sparrow")
        let http: any Service = if let tls {
            Application(
                router: router, server: try .tls(.http1(), tlsConfiguration: try tls.serverConfiguration(.optional)),
                configuration: configuration, onServerRunning: onServerRunning, logger: logger)
        } else {
            Application(router: router, configuration: configuration, onServerRunning: onServerRunning, logger: logger)
        }
        let reload = CertificateReload.onHangup(tls, logger: logger)
        defer { reload?.cancel() }
        var services: [any Service] = [rpc, http]
        if healthIntervalMs > 0 { services.append(HealthChecker(coordinator: coordinator, interval: .milliseconds(healthIntervalMs))) }
        if follow != nil { services.append(MapFollower(coordinator: coordinator)) }
        if let etcdStore {
            let record = CoordinatorRecord(
                name: tls?.identity?.id ?? ProcessInfo.processInfo.hostName, rpc: advertise ?? "\(server.host):\(rpcPort)", http: nil)
            services.append(EtcdControlPlane(coordinator: coordinator, store: etcdStore, record: record, ttl: etcdLeaseTtl))
        }
        try await ServerRuntime.run(services, logger: logger)
        await coordinator.close()
        await etcdStore?.client.shutdown()
    }
}

struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Search through a coordinator (protobuf/TCP) and print the ranked hits."
    )

    @Option(help: "Coordinator protobuf/TCP address, host:port.")
    var coordinator: String

    @Option(help: "Hits to return.")
    var k: Int = 10

    @Option(help: "A ready query vector as JSON {\"token\": weight} instead of text.")
    var vector: String?

    @Flag(help: "Show each hit's matched tokens.")
    var explain = false

    @Option(help: "Deadline, milliseconds.")
    var timeoutMs: Int = 5000

    @OptionGroup var mode: SearchModeOptions

    @Argument(help: "The query text.")
    var text: String = ""

    @OptionGroup var access: ClientSecurityOptions

    func run() async throws {
        var request = Sparrow_V1_QueryRequest()
        request.text = text
        request.k = UInt32(max(1, k))
        request.explain = explain
        request.timeoutMs = UInt32(timeoutMs)
        request.mode = try mode.wire()
        if let vector {
            guard let object = try? JSONSerialization.jsonObject(with: Data(vector.utf8)) as? [String: NSNumber] else {
                throw ValidationError("--vector must be a JSON object of token: number")
            }
            request.vector = .init(object.mapValues(\.floatValue))
        }
        let client = try access.coordinator(coordinator)
        defer { Task { await client.close() } }
        let response: Sparrow_V1_QueryResponse
        do {
            response = try await client.search(request, timeout: .milliseconds(timeoutMs + 500))
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        print(QueryTable.render(response, explain: explain))
    }
}

/// The readable table `sparrow query` prints.
enum QueryTable {
    static func render(_ response: Sparrow_V1_QueryResponse, explain: Bool) -> String {
        let coverage = response.coverage
        let mode = response.mode == "exact" || response.mode.isEmpty ? "exact" : "\(response.mode) (\(response.approximateShards) shards approximate)"
        var lines = ["coverage \(coverage.shardsOk)/\(coverage.shardsTotal) shards\(coverage.timedOut ? " (timed out)" : ""), " + String(format: "%.2f ms", response.tookMs) + ", \(mode)"]
        for failure in coverage.failed { lines.append("  missing \(failure.shard) (node \(failure.node)): \(failure.reason)") }
        let idWidth = max(2, response.hits.map(\.id.count).max() ?? 2)
        lines.append(["rank", "score".padding(toLength: 10, withPad: " ", startingAt: 0), "shard".padding(toLength: 10, withPad: " ", startingAt: 0), "id"].joined(separator: "  "))
        for (rank, hit) in response.hits.enumerated() {
            lines.append([
                String(rank + 1).padding(toLength: 4, withPad: " ", startingAt: 0),
                String(format: "%-10.4f", hit.score),
                hit.shard.padding(toLength: 10, withPad: " ", startingAt: 0),
                hit.id.padding(toLength: idWidth, withPad: " ", startingAt: 0),
            ].joined(separator: "  "))
            if explain {
                for term in hit.explanation {
                    lines.append("        \(term.token)  " + String(format: "%.3f × %.3f = %.4f", term.queryWeight, term.documentWeight, term.queryWeight * term.documentWeight))
                }
            }
        }
        if response.hits.isEmpty { lines.append("(no hits)") }
        return lines.joined(separator: "\n")
    }
}

/// `--approximate` with `--recall` or `--threshold` and `--heap-factor`: how a search asks to
/// be answered (exact without them).
struct SearchModeOptions: ParsableArguments {
    @Flag(help: "Search approximately (the shards' calibrated settings for --recall, or --threshold and --heap-factor).")
    var approximate = false

    @Option(help: "Target recall, in (0, 1], with --approximate.")
    var recall: Double?

    @Option(help: "Approximate: skip tiers below this fraction of the query's largest contribution, in [0, 1).")
    var threshold: Double?

    @Option(help: "Approximate: score exactly candidates within this fraction of the k-th score, in (0, 1].")
    var heapFactor: Double?

    /// The engine's mode.
    func mode() throws -> SearchMode {
        guard approximate else {
            guard recall == nil, threshold == nil, heapFactor == nil else { throw ValidationError("--recall, --threshold and --heap-factor need --approximate") }
            return .exact
        }
        let mode: SearchMode
        switch (recall, threshold, heapFactor) {
        case (let recall?, nil, nil): mode = .recall(recall)
        case (nil, let threshold?, let heapFactor?): mode = .settings(.init(threshold: threshold, heapFactor: heapFactor))
        default: throw ValidationError("--approximate takes either --recall or both --threshold and --heap-factor")
        }
        if let problem = mode.problem { throw ValidationError(problem) }
        return mode
    }

    /// The mode as the wire carries it.
    func wire() throws -> Sparrow_V1_SearchMode {
        var wire = Sparrow_V1_SearchMode()
        switch try mode() {
        case .exact: break
        case .recall(let target):
            wire.approximate = true
            wire.targetRecall = target
        case .settings(let settings):
            wire.approximate = true
            wire.threshold = settings.threshold
            wire.heapFactor = settings.heapFactor
        }
        return wire
    }
}
