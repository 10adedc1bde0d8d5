import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An etcd cluster of `members` real `etcd` processes (Debian's etcd-server) on 127.0.0.1, in a
/// scratch directory, with fast elections (loopback: 50 ms heartbeats, 500 ms election timeout,
/// unless told). `down()` stops it.
final class EtcdTestCluster {
    struct Member {
        var name: String
        var client: Int
        var peer: Int
        var process: Process?
    }

    let directory: String
    private(set) var members: [Member]
    /// With TLS: the CA every certificate chains to, and the members' certificate and key (also
    /// used between members); clients must then present a certificate from the CA.
    let tls: (ca: String, certificate: String, key: String)?
    let electionTimeoutMs: Int
    static let binary = "/usr/bin/etcd"

    static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    private var scheme: String { tls == nil ? "http" : "https" }

    init(members count: Int, tls: (ca: String, certificate: String, key: String)? = nil, electionTimeoutMs: Int = 500) throws {
        self.tls = tls
        self.electionTimeoutMs = electionTimeoutMs
        guard Self.available else { throw TestFailure("\(Self.binary) is missing: install etcd-server (ops/install-deps)") }
        directory = NSTemporaryDirectory() + "sparrow-etcd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        members = try (0..<count).map { Member(name: "m\($0)", client: try Self.freePort(), peer: try Self.freePort()) }
        for index in members.indices { try start(index) }
        try waitUntilHealthy()
    }

    /// The client URLs, comma-separated (for `--etcd`).
    var endpoints: String { members.indices.map(endpoint).joined(separator: ",") }

    func endpoint(_ index: Int) -> String { "\(scheme)://127.0.0.1:\(members[index].client)" }

    /// Starts member `index` (again, on its data directory, after `kill`).
    func start(_ index: Int) throws {
        let member = members[index]
        let initial = members.map { "\($0.name)=\(scheme)://127.0.0.1:\($0.peer)" }.joined(separator: ",")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = [
            "--name", member.name, "--data-dir", "\(directory)/\(member.name)",
            "--listen-client-urls", endpoint(index), "--advertise-client-urls", endpoint(index),
            "--listen-peer-urls", "\(scheme)://127.0.0.1:\(member.peer)", "--initial-advertise-peer-urls", "\(scheme)://127.0.0.1:\(member.peer)",
            "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", (directory as NSString).lastPathComponent,
            "--heartbeat-interval", "50", "--election-timeout", "\(electionTimeoutMs)", "--pre-vote", "--log-level", "warn",
        ] + (tls.map { tls in
            ["--cert-file", tls.certificate, "--key-file", tls.key, "--trusted-ca-file", tls.ca, "--client-cert-auth",
             "--peer-cert-file", tls.certificate, "--peer-key-file", tls.key, "--peer-trusted-ca-file", tls.ca, "--peer-client-cert-auth"]
        } ?? [])
        let log = "\(directory)/\(member.name).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)!
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        members[index].process = process
    }

    /// SIGKILL of member `index`.
    func kill(_ index: Int) {
        guard let process = members[index].process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        members[index].process = nil
    }

    /// SIGSTOP (`frozen`) or SIGCONT of member `index`: it keeps its sockets and answers nothing.
    func freeze(_ index: Int, _ frozen: Bool = true) {
        guard let process = members[index].process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, frozen ? SIGSTOP : SIGCONT)
    }

    /// Waits until every running member answers `/health` as healthy.
    func waitUntilHealthy(within seconds: Double = 30) throws {
        let deadline = Date().addingTimeInterval(seconds)
        for index in members.indices where members[index].process != nil {
            while true {
                let credentials = tls.map { ["--cacert", $0.ca, "--cert", $0.certificate, "--key", $0.key] } ?? []
                let output = try LocalTestCluster.run(executable: "/usr/bin/curl", ["-sS", "-m", "2"] + credentials + [endpoint(index) + "/health"])
                if output.text.contains("\"health\":\"true\"") { break }
                guard Date() < deadline else { throw TestFailure("etcd \(members[index].name) is not healthy: \(output.text)") }
                usleep(100_000)
            }
        }
    }

    func down() {
        for index in members.indices {
            freeze(index, false)
            kill(index)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A TCP port free on 127.0.0.1 now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestFailure("bind: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
