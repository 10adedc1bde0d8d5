import Foundation
import SparrowSecurity
import SparrowWire

/// What `LocalClusterLauncher.up` started, kept in DATA/local.json for `down` and for clients.
public struct LocalCluster: Codable, Sendable {
    public struct Process: Codable, Sendable {
        public var name: String
        public var pid: Int32
        public var log: String
    }

    /// With `secure`: where the TLS material and keys are, and one key per scope.
    public struct Security: Codable, Sendable {
        public var ca: String
        public var adminCertificate: String
        public var adminKey: String
        public var keysFile: String
        public var keys: [String: String]

        /// The folder of the CA and of every certificate (`ROLE-ID.pem` and `.key`).
        public var directory: String { (ca as NSString).deletingLastPathComponent }

        /// The certificate and key files of `identity`.
        public func files(_ identity: PeerIdentity) -> TLSFiles {
            let base = (directory as NSString).appendingPathComponent("\(identity.role.rawValue)-\(identity.id)")
            return TLSFiles(ca: ca, certificate: base + ".pem", key: base + ".key")
        }

        /// A server's `--tls-*` options: the certificate of `identity`.
        public func tlsArguments(_ identity: PeerIdentity) -> [String] {
            let files = files(identity)
            return ["--tls-ca", ca, "--tls-cert", files.certificate!, "--tls-key", files.key!]
        }
    }

    public var processes: [Process]
    public var coordinatorRPC: String
    public var coordinatorHTTP: String
    public var clusterFile: String
    public var security: Security?

    public static func path(_ data: String) -> String { (data as NSString).appendingPathComponent("local.json") }

    /// The cluster `up` started in `data`.
    public static func load(data: String) throws -> LocalCluster {
        let path = path(data)
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw LocalClusterError("no local cluster in \(data) (\(path) is missing)")
        }
        return try JSONDecoder().decode(LocalCluster.self, from: contents)
    }

    /// A client of the coordinator as the operator: the admin certificate (every call allowed).
    public func operatorClient() throws -> ClusterClient {
        let endpoint = try Endpoint(parsing: coordinatorRPC)
        guard let security else { return ClusterClient(endpoint) }
        let identity = try TLSIdentity(files: security.files(PeerIdentity(role: .admin, id: "admin")))
        return ClusterClient(endpoint, security: ClientSecurity(tls: identity, expectedPeer: PeerExpectation(role: .coordinator)))
    }

    /// A client of the coordinator presenting the API key of `scope` (TLS without a client certificate).
    public func client(key scope: KeyScope) throws -> ClusterClient {
        let endpoint = try Endpoint(parsing: coordinatorRPC)
        guard let security else { return ClusterClient(endpoint) }
        let tls = try TLSIdentity(files: TLSFiles(ca: security.ca, certificate: nil, key: nil))
        return ClusterClient(endpoint, security: ClientSecurity(tls: tls, expectedPeer: PeerExpectation(role: .coordinator), apiKey: security.keys[scope.rawValue]))
    }
}

/// A local cluster that could not be started, found or stopped.
public struct LocalClusterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
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
}
