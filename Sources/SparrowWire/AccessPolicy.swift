import SparrowSecurity

/// Who is calling, as a server established it: a cluster process by its certificate, a client
/// by its API key, or nobody in particular on a server that checks nothing (plaintext on
/// loopback, or `--insecure`).
public enum Principal: Sendable, Equatable, CustomStringConvertible {
    case certificate(PeerIdentity)
    case key(AuthenticatedKey)
    /// A server that does not check callers.
    case unchecked

    public var description: String {
        switch self {
        case .certificate(let identity): "cert:\(identity)"
        case .key(let key): "key:\(key.id)"
        case .unchecked: "unchecked"
        }
    }
}

/// Which callers may call which method, and which calls are audited. Pure: the server asks it
/// with the caller's certificate identity (if its TLS handshake presented one) and API key
/// (if the request carries one), and gets a principal or a refusal.
public struct AccessPolicy: Sendable {
    /// What one method requires.
    public struct Rule: Sendable {
        /// Certificate roles allowed.
        public var roles: Set<PeerIdentity.Role>
        /// The smallest key scope allowed (nil: no key is enough).
        public var scope: KeyScope?
        /// Writes and control calls go to the audit log, allowed or refused.
        public var audited: Bool

        public init(roles: Set<PeerIdentity.Role>, scope: KeyScope? = nil, audited: Bool) {
            self.roles = roles
            self.scope = scope
            self.audited = audited
        }
    }

    public var rules: [String: Rule]
    /// The rule of a method the policy does not name (it gets `unknown_method` once admitted).
    public var otherwise: Rule

    public init(rules: [String: Rule], otherwise: Rule) {
        self.rules = rules
        self.otherwise = otherwise
    }

    public func rule(_ method: String) -> Rule { rules[method] ?? otherwise }

    /// The caller of `method`, or why it is refused: `unauthenticated` without a valid credential,
    /// `permissionDenied` when its role or scope does not allow the method.
    /// `key` is the outcome of checking the request's API key (nil: it carried none).
    public func admit(
        _ method: String, certificate: PeerIdentity?, key: Result<AuthenticatedKey, SecurityError>?
    ) -> Result<Principal, RPCError> {
        let rule = rule(method)
        var name: String { RPCError.printable(method) }
        switch key {
        case .failure(let reason)?:
            return .failure(RPCError(.unauthenticated, "\(reason.description)"))
        case .success(let key)?:
            guard let scope = rule.scope else {
                return .failure(RPCError(.permissionDenied, "\(name) takes no API key: only a cluster certificate (\(Self.roles(rule))) may call it"))
            }
            guard key.scope >= scope else {
                return .failure(RPCError(.permissionDenied, "\(name) needs an API key of scope \(scope.rawValue); key \(key.id) has \(key.scope.rawValue)"))
            }
            return .success(.key(key))
        case nil:
            guard let certificate else {
                let options = rule.scope.map { "an API key of scope \($0.rawValue) or " } ?? ""
                return .failure(RPCError(.unauthenticated, "\(name) needs \(options)a cluster certificate (\(Self.roles(rule)))"))
            }
            guard rule.roles.contains(certificate.role) else {
                return .failure(RPCError(.permissionDenied, "\(name) is not allowed to \(certificate) (allowed: \(Self.roles(rule)))"))
            }
            return .success(.certificate(certificate))
        }
    }

    private static func roles(_ rule: Rule) -> String {
        rule.roles.isEmpty ? "none" : rule.roles.map(\.rawValue).sorted().joined(separator: ", ")
    }
}

extension AccessPolicy {
    /// A shard node's: every call from a coordinator, and health and statistics also from an
    /// operator's admin certificate. No API key opens a node.
    public static let shardNode: AccessPolicy = {
        var rules: [String: Rule] = [:]
        let reads = [ShardMethod.search, ShardMethod.batchSearch, ShardMethod.explain, ShardMethod.getDocument]
        for method in reads { rules[method] = Rule(roles: [.coordinator], audited: false) }
        for method in [ShardMethod.health, ShardMethod.stats] { rules[method] = Rule(roles: [.coordinator, .admin], audited: false) }
        for method in ShardMethod.all where rules[method] == nil { rules[method] = Rule(roles: [.coordinator], audited: true) }
        return AccessPolicy(rules: rules, otherwise: Rule(roles: [.coordinator], audited: true))
    }()

    /// A coordinator's: searches and the map for `read` keys and other coordinators (followers),
    /// writes for `write` keys, everything else for `admin` keys and admin certificates.
    public static let coordinator: AccessPolicy = {
        var rules: [String: Rule] = [:]
        for method in [CoordinatorMethod.search, CoordinatorMethod.cluster] {
            rules[method] = Rule(roles: [.coordinator, .admin], scope: .read, audited: false)
        }
        rules[CoordinatorMethod.write] = Rule(roles: [.admin], scope: .write, audited: true)
        for method in CoordinatorMethod.all where rules[method] == nil { rules[method] = Rule(roles: [.admin], scope: .admin, audited: true) }
        return AccessPolicy(rules: rules, otherwise: Rule(roles: [.admin], scope: .admin, audited: true))
    }()
}
