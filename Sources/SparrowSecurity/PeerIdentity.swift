/// Who a cluster process is: the role and identity its certificate names. A certificate carries
/// them as a URI subject alternative name, `sparrow://<role>/<id>` (for example
/// `sparrow://node/node-1`), issued by `sparrow certs issue` under the cluster's CA.
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    /// What a certificate allows its holder to be.
    public enum Role: String, Sendable, CaseIterable {
        /// A shard node: serves shards, calls nothing in the cluster.
        case node
        /// A coordinator: the only caller of a node's calls, and a follower of another coordinator's map.
        case coordinator
        /// An operator's tool (`sparrow ctl`): every coordinator call.
        case admin
        /// An etcd member of the control plane (`coordinator serve --etcd`): its certificate lets
        /// coordinators check that they talk to the cluster's etcd; no Sparrow process takes its calls.
        case etcd
    }

    public static let uriScheme = "sparrow://"

    public var role: Role
    public var id: String

    public init(role: Role, id: String) {
        self.role = role
        self.id = id
    }

    /// Parses `sparrow://<role>/<id>`; nil for any other URI.
    public init?(uri: String) {
        guard uri.hasPrefix(Self.uriScheme) else { return nil }
        let rest = uri.dropFirst(Self.uriScheme.count)
        guard let slash = rest.firstIndex(of: "/"), let role = Role(rawValue: String(rest[..<slash])) else { return nil }
        let id = String(rest[rest.index(after: slash)...])
        guard Self.isValidID(id) else { return nil }
        self.init(role: role, id: id)
    }

    public var uri: String { "\(Self.uriScheme)\(role.rawValue)/\(id)" }

    public var description: String { "\(role.rawValue):\(id)" }

    /// 1–128 characters of letters, digits, '-', '_', '.', ':' or '@'.
    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128
            && id.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.:@".unicodeScalars.contains($0)) }
    }
}
