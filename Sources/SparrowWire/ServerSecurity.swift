import Logging
import SparrowSecurity

/// What a server checks: TLS (and whether clients must present a certificate), API keys, and
/// who may call what. Without a policy it checks nobody (plaintext on loopback, or `--insecure`).
public struct ServerSecurity: Sendable {
    public var tls: TLSIdentity?
    public var clientCertificates: ClientCertificates
    public var keys: APIKeyVerifier?
    public var policy: AccessPolicy?
    /// Where audited calls are logged, one structured line each.
    public var audit: Logger

    public init(
        tls: TLSIdentity?, clientCertificates: ClientCertificates = .required, keys: APIKeyVerifier? = nil, policy: AccessPolicy?,
        audit: Logger = Logger(label: "sparrow.audit")
    ) {
        self.tls = tls
        self.clientCertificates = clientCertificates
        self.keys = keys
        self.policy = policy
        self.audit = audit
    }

    /// Checks nothing.
    public static let none = ServerSecurity(tls: nil, policy: nil)

    /// The caller of `method`, or the refusal to send back with who was refused (for the audit log).
    func admit(_ method: String, apiKey: String, certificate: PeerIdentity?) -> Result<Principal, Refusal> {
        guard let policy else { return .success(.unchecked) }
        let key: Result<AuthenticatedKey, SecurityError>? =
            apiKey.isEmpty ? nil : (keys?.authenticate(apiKey) ?? .failure(.invalid("this server takes no API keys; it authenticates by certificate")))
        return policy.admit(method, certificate: certificate, key: key).mapError { error in
            let caller: String = switch key {
            case .success(let key)?: Principal.key(key).description
            case .failure?: "invalid key"
            case nil: certificate.map { Principal.certificate($0).description } ?? "anonymous"
            }
            return Refusal(error: error, caller: caller)
        }
    }

    /// A refused call: the answer, and who was refused.
    struct Refusal: Error {
        var error: RPCError
        var caller: String
    }

    /// Whether calls of `method` go to the audit log.
    func audited(_ method: String) -> Bool { policy?.rule(method).audited ?? false }

    /// One audit line: who called what, from where, and how it ended.
    func record(_ method: String, caller: String, peer: String, outcome: String) {
        audit.notice("audit", metadata: [
            "audit.method": "\(RPCError.printable(method))", "audit.caller": "\(caller)", "audit.peer": "\(peer)", "audit.outcome": "\(outcome)",
        ])
    }
}
