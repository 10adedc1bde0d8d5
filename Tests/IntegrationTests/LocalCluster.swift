import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SparrowClient
import SparrowCoordinator
import SparrowCore
import SparrowSecurity
import SparrowStorage
import SparrowWire

/// A local cluster (`LocalClusterLauncher`, what `sparrow local up` runs) in a scratch
/// directory, stopped (and removed) by `down()`. Secure by default (TLS between every process,
/// API keys): tests talk to it as an operator would, with the admin certificate, or as its
/// coordinator would.
final class LocalTestCluster {
    let data: String
    let map: ClusterMap
    let coordinator: Endpoint
    /// What the launcher started: processes, addresses, the TLS material and keys.
    let local: LocalCluster
    /// The coordinator's protobuf/TCP address, host:port (for `--coordinator`).
    var rpcAddress: String { local.coordinatorRPC }
    /// Process ids by name (node id or "coordinator"), kept current by `restart`.
    private(set) var pids: [String: Int32]
    /// Processes this test started itself (restarts, added nodes), stopped by `down()`.
    private var started: [Process] = []
    /// The TLS material and keys of a secure cluster (nil: plaintext).
    var security: LocalCluster.Security? { local.security }

    static var binary: String { BulkIngestCrashTests.binary }

    /// Starts `shards` shards (× `replicas`) loaded with `records`, on `nodes` processes
    /// (default: one per shard), each server run under `wrapper` (such as `taskset -c 0`).
    convenience init(
        records: [TokenVectorRecord], shards: Int, replicas: Int = 1, nodes: Int? = nil, secure: Bool = true, searchConcurrency: String = "auto",
        wrapper: [String] = []
    ) throws {
        let data = NSTemporaryDirectory() + "sparrow-cluster-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let vectors = data + "/vectors.jsonl"
        try records.map(\.jsonLine).joined().write(toFile: vectors, atomically: false, encoding: .utf8)
        try self.init(data: data, shards: shards, nodes: nodes, secure: secure) { launcher in
            (launcher.replicas, launcher.vectors, launcher.searchConcurrency, launcher.wrapper) = (replicas, vectors, searchConcurrency, wrapper)
        }
    }

    /// Starts `shards` shard processes (`nodes`, default one per shard) in `data` (a scratch
    /// directory by default), the launcher set up by `configure`.
    init(
        data: String = NSTemporaryDirectory() + "sparrow-cluster-\(UUID().uuidString)", shards: Int, nodes: Int? = nil, binary: String = binary,
        secure: Bool = true, configure: (inout LocalClusterLauncher) -> Void = { _ in }
    ) throws {
        self.data = data
        var launcher = LocalClusterLauncher(shards: shards, nodes: nodes, data: data + "/cluster", binary: binary)
        launcher.secure = secure
        configure(&launcher)
        local = try launcher.up()
        coordinator = try Endpoint(parsing: local.coordinatorRPC)
        map = try ClusterMap.load(path: local.clusterFile)
        pids = Dictionary(uniqueKeysWithValues: local.processes.map { ($0.name, $0.pid) })
    }

    /// Addresses of nodes started by `startNode`.
    private var added: [String: String] = [:]

    func node(_ id: String) throws -> Endpoint {
        guard let address = map.address(of: id) ?? added[id] else { throw TestFailure("no node \(id)") }
        return try Endpoint(parsing: address)
    }

    /// The coordinator's HTTP address (by the name its certificate carries).
    func httpURL() throws -> String {
        local.coordinatorHTTP.replacingOccurrences(of: "127.0.0.1", with: "localhost")
    }

    /// The sum of the coordinator's metric `name` over its labels, from `/metrics`.
    func metric(_ name: String) throws -> Double {
        let access = security.map { ["--cacert", $0.ca, "-H", "Authorization: Bearer \($0.keys["read"]!)"] } ?? []
        let text = try Self.run(executable: "/usr/bin/curl", ["-sS"] + access + [try httpURL() + "/metrics"]).text
        return text.split(separator: "\n").filter { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    /// A client of the coordinator with the admin certificate (every call allowed).
    func client() throws -> RPCClient { try client(of: coordinator) }

    /// A client of the coordinator at `endpoint` (this cluster's, or a follower) as the operator.
    func client(of endpoint: Endpoint) throws -> RPCClient {
        guard let security else { return RPCClient(endpoint) }
        return RPCClient(endpoint, security: ClientSecurity(tls: try identity(security, .admin, "admin"), expectedPeer: PeerExpectation(role: .coordinator)))
    }

    /// A client of the coordinator presenting the API key of `scope` (TLS without a client certificate).
    func client(key scope: KeyScope) throws -> RPCClient { try local.client(key: scope).rpc }

    /// A client of node `id` that calls it as the cluster's coordinator does.
    func nodeClient(_ id: String) throws -> RPCClient {
        guard let security else { return RPCClient(try node(id)) }
        return RPCClient(try node(id), security: ClientSecurity(tls: try identity(security, .coordinator, "coordinator"), expectedPeer: PeerExpectation(role: .node, id: id)))
    }

    /// How an in-process coordinator calls this cluster's nodes: as its coordinator.
    func coordinatorPeers() throws -> ClientSecurity {
        guard let security else { return .none }
        return ClientSecurity(tls: try identity(security, .coordinator, "coordinator"))
    }

    /// The TLS identity of the certificate the setup issued to `role`-`id`.
    func identity(_ security: LocalCluster.Security, _ role: PeerIdentity.Role, _ id: String) throws -> TLSIdentity {
        try TLSIdentity(files: security.files(PeerIdentity(role: role, id: id)))
    }

    /// `--coordinator` and the operator's credentials, for `sparrow ctl` and the other clients.
    var access: [String] { ["--coordinator", rpcAddress] + (security.map { ["--tls-ca", $0.ca, "--tls-cert", $0.adminCertificate, "--tls-key", $0.adminKey] } ?? []) }

    /// The TLS and key options of a restarted process named `name` ("coordinator", or a node id).
    private func secured(_ name: String) throws -> [String] {
        guard let security else { return [] }
        if name.hasPrefix("coordinator") || name == "follower" {
            return security.tlsArguments(PeerIdentity(role: .coordinator, id: "coordinator")) + ["--api-keys", security.keysFile]
        }
        if !FileManager.default.fileExists(atPath: "\(security.directory)/node-\(name).pem") {
            let issued = try Self.run(["certs", "issue", "--role", "node", "--id", name, "--host", "127.0.0.1", "--ca", security.directory])
            guard issued.status == 0 else { throw TestFailure("certs issue failed: \(issued.text)") }
        }
        return security.tlsArguments(PeerIdentity(role: .node, id: name))
    }

    /// Starts `name` (a node of the map, or "coordinator") again on its old address, after a
    /// kill, with `options` added.
    func restart(_ name: String, options: [String] = []) throws {
        let port = { (address: String) in String(address.split(separator: ":").last!) }
        if name == "coordinator" {
            try launch(name, ["coordinator", "serve", "--cluster", data + "/cluster/cluster.yaml", "--port", port(rpcAddress), "--http-port", "0"] + options + secured(name))
        } else {
            try launch(name, ["shard", "serve", "--data", data + "/cluster/\(name)", "--port", port(map.address(of: name)!), "--node-id", name] + options + secured(name))
        }
    }

    /// Starts a new shard node `id` (not in the map) on a free port; returns its address.
    func startNode(_ id: String) throws -> String {
        let address = "127.0.0.1:\(try launch(id, ["shard", "serve", "--data", data + "/cluster/\(id)", "--port", "0", "--node-id", id] + secured(id)))"
        added[id] = address
        return address
    }

    /// Starts a second coordinator that follows this cluster's; returns its protobuf/TCP address.
    func startFollower() throws -> String {
        let file = data + "/cluster/follower.yaml"
        try FileManager.default.copyItem(atPath: data + "/cluster/cluster.yaml", toPath: file)
        return "127.0.0.1:\(try launch("follower", ["coordinator", "serve", "--cluster", file, "--port", "0", "--http-port", "0", "--follow", rpcAddress] + secured("follower")))"
    }

    /// Starts coordinator `name` keeping the map in etcd at `etcd` under `clusterName` (seeded
    /// from this cluster's file when etcd holds none); returns its protobuf/TCP address.
    func startCoordinator(_ name: String, etcd: String, clusterName: String, ttl: Int, options: [String] = []) throws -> String {
        let arguments = [
            "coordinator", "serve", "--cluster", data + "/cluster/cluster.yaml", "--etcd", etcd, "--cluster-name", clusterName,
            "--etcd-lease-ttl", "\(ttl)", "--port", "0", "--http-port", "0",
        ]
        return "127.0.0.1:\(try launch(name, arguments + options + secured(name)))"
    }

    /// SIGKILL of process `name` (as `pids` names it).
    func kill(_ name: String) {
        guard let pid = pids[name] else { return }
        Glibc.kill(pid, SIGKILL)
        if let process = started.first(where: { $0.processIdentifier == pid }) { process.waitUntilExit() }
    }

    /// Runs a server process logging to DATA/cluster/NAME.log until it reports its port.
    @discardableResult
    private func launch(_ name: String, _ arguments: [String]) throws -> Int {
        let portFile = data + "/cluster/\(name).ports.json"
        try? FileManager.default.removeItem(atPath: portFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments + ["--port-file", portFile]
        let log = data + "/cluster/\(name).log"
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: log]) }
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = process.standardOutput
        try process.run()
        started.append(process)
        if let ports = ServerPorts.wait(portFile, within: 30, running: { process.isRunning }) {
            pids[name] = process.processIdentifier
            return ports["rpc"]!
        }
        throw TestFailure("\(name) did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    func down() {
        for process in started where process.isRunning {
            Glibc.kill(process.processIdentifier, SIGCONT)   // a test may have stopped it
            process.terminate()
        }
        for process in started { process.waitUntilExit() }
        _ = try? LocalClusterLauncher.down(data: data + "/cluster")
        try? FileManager.default.removeItem(atPath: data)
    }

    /// Runs a program (default: sparrow) to completion; its exit status and merged output.
    static func run(executable: String = binary, _ arguments: [String]) throws -> (status: Int32, text: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    /// Samples the resident memory of `pids` every `interval` until cancelled; the task's value
    /// is each one's peak, KiB, starting from `start`.
    static func peakResident(_ pids: [Int32], from start: [Int], every interval: Duration) -> Task<[Int], Never> {
        Task {
            var peak = start
            while !Task.isCancelled {
                peak = zip(peak, pids.map { residentKiB($0) ?? 0 }).map { max($0, $1) }
                try? await Task.sleep(for: interval)
            }
            return peak
        }
    }

    /// Resident memory of a process, KiB.
    static func residentKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum GeneratedCorpus {
    /// Documents over tokens t0…t(vocabulary-1), common tokens more frequent; weights on a
    /// coarse grid so that equal scores (ties) occur.
    static func documents(_ count: Int, vocabulary: Int, seed: UInt64) -> [TokenVectorRecord] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { doc in
            var vector: [String: Float] = [:]
            for _ in 0..<Int.random(in: 3...25, using: &random) {
                let token = Int(Double(vocabulary) * pow(Double.random(in: 0..<1, using: &random), 2))
                vector["t\(token)"] = Float(Int.random(in: 1...12, using: &random)) / 4
            }
            return TokenVectorRecord(id: "doc-\(doc)", vector: vector)
        }
    }

    /// Queries of 1–12 tokens, some absent from every document.
    static func queries(_ count: Int, vocabulary: Int, seed: UInt64) -> [[String: Float]] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            var query: [String: Float] = [:]
            for _ in 0..<Int.random(in: 1...12, using: &random) {
                query["t\(Int.random(in: 0..<(vocabulary + 20), using: &random))"] = Float(Int.random(in: 1...40, using: &random)) / 10
            }
            return query
        }
    }
}
