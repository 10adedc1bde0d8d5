import ArgumentParser
import Foundation
import SparrowSecurity

struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "The cluster's certificate authority and the role certificates of its processes (mutual TLS).",
        subcommands: [CertsCACommand.self, CertsIssueCommand.self]
    )
}

struct CertsCACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca", abstract: "Create a certificate authority: DIR/ca.pem (give it to every process) and DIR/ca.key (keep it offline).")

    @Option(help: "Directory for ca.pem and ca.key.")
    var out: String

    @Option(help: "Days the CA is valid.")
    var days = 3650

    @Flag(help: "Replace an existing CA (every certificate it issued stops being trusted once processes load the new one).")
    var force = false

    func run() throws {
        try reportingErrors {
            let (certificate, key) = (out + "/ca.pem", out + "/ca.key")
            guard force || !FileManager.default.fileExists(atPath: key) else {
                throw ValidationError("\(key) exists: a cluster keeps one CA (pass --force to replace it)")
            }
            try CertificateAuthority.create(days: days).save(certificatePath: certificate, keyPath: key)
            print("wrote \(certificate) and \(key) (mode 0600)")
        }
    }
}

struct CertsIssueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue a certificate for one process: DIR/<role>-<id>.pem and .key.",
        discussion: """
        The certificate names the role and id as sparrow://ROLE/ID: a node accepts calls only from coordinator \
        certificates (and health/stats from admin ones), a coordinator accepts admin certificates for control \
        calls and other coordinators for its map, and a coordinator talks to node ID only if that node presents \
        this node's certificate. Rotate by issuing a new one and sending the process SIGHUP.
        """
    )

    @Option(help: "node, coordinator, admin or etcd (an etcd member's server and peer certificate).")
    var role: String

    @Option(help: "The identity: a node's id as in the cluster map, a coordinator's name, an operator's name.")
    var id: String

    @Option(help: "Host name or IP address clients reach the process at (repeatable).")
    var host: [String] = []

    @Option(help: "Days the certificate is valid (at most the CA's remaining life).")
    var days = 365

    @Option(help: "Directory holding ca.pem and ca.key.")
    var ca: String

    @Option(help: "Directory to write the certificate and key into (default: the CA's).")
    var out: String?

    func run() throws {
        try reportingErrors {
            guard let role = PeerIdentity.Role(rawValue: role) else {
                throw ValidationError("--role takes \(PeerIdentity.Role.allCases.map(\.rawValue).joined(separator: ", ")), not '\(self.role)'")
            }
            guard PeerIdentity.isValidID(id) else { throw ValidationError("--id '\(id)' must be 1–128 letters, digits, '-', '_', '.', ':' or '@'") }
            let authority = try CertificateAuthority.load(certificatePath: ca + "/ca.pem", keyPath: ca + "/ca.key")
            let issued = try authority.issue(PeerIdentity(role: role, id: id), hosts: host, days: days)
            let base = "\(out ?? ca)/\(role.rawValue)-\(id)"
            try issued.save(certificatePath: base + ".pem", keyPath: base + ".key")
            print("wrote \(base).pem and \(base).key: \(role.rawValue) \(id), valid until \(issued.certificate.notValidAfter)")
        }
    }
}

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "API keys for clients of a coordinator (scopes read, write, admin), kept salted and hashed in a keys file.",
        discussion: "A coordinator started with --api-keys FILE rereads the file when it changes: a revoked key is refused within a second.",
        subcommands: [KeysCreateCommand.self, KeysListCommand.self, KeysRevokeCommand.self]
    )
}

struct KeysFileOption: ParsableArguments {
    @Option(help: "The keys file (created with mode 0600 if absent).")
    var file: String
}

struct KeysCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Add a key and print it (the only time it is shown).")

    @OptionGroup var keys: KeysFileOption

    @Option(help: "read (searches, the map), write (also online writes) or admin (also loads, moves and node changes).")
    var scope: String

    @Option(help: "Who or what uses the key, for `keys list` and the audit log.")
    var name: String

    func run() throws {
        try reportingErrors {
            guard let scope = KeyScope(rawValue: scope) else { throw ValidationError("--scope takes read, write or admin, not '\(self.scope)'") }
            var file = try APIKeysFile.load(keys.file)
            let key = file.create(name: name, scope: scope)
            try file.save(keys.file)
            print(key)
        }
    }
}

struct KeysListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Key ids, names, scopes, and when they were created or revoked.")

    @OptionGroup var keys: KeysFileOption

    func run() throws {
        try reportingErrors {
            for key in try APIKeysFile.load(keys.file).keys {
                print([key.id, key.scope.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0), key.created, key.revoked.map { "revoked \($0)" } ?? "active", key.name]
                    .joined(separator: "  "))
            }
        }
    }
}

struct KeysRevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a key by its id (the 12 hex digits after spk_).")

    @OptionGroup var keys: KeysFileOption

    @Argument(help: "The key id.")
    var id: String

    func run() throws {
        try reportingErrors {
            var file = try APIKeysFile.load(keys.file)
            guard file.revoke(id) else { throw ValidationError("\(keys.file) has no key '\(id)'") }
            try file.save(keys.file)
            print("revoked \(id)")
        }
    }
}
