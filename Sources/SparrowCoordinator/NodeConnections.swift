import SparrowWire
import Synchronization

/// The coordinator's connections to shard nodes: one RPC client per node, made on first use
/// for the address the map gives it, and made again (the old one closed) when the map moves the
/// node, as a follower learns from its owner. With TLS, each client talks only to the node
/// certificate of its node's id.
final class NodeConnections: Sendable {
    /// Clients by node id, with the address each was made for.
    private let clients = Mutex<[String: (address: String, client: RPCClient)]>([:])
    /// How the coordinator calls nodes: TLS with its coordinator certificate.
    let security: ClientSecurity

    init(security: ClientSecurity) {
        self.security = security
    }

    /// The client of `node` at `address`.
    func client(_ node: String, at address: String) throws -> RPCClient {
        if let cached = clients.withLock({ $0[node] }), cached.address == address { return cached.client }
        let endpoint = try Endpoint(parsing: address)
        let (client, replaced) = clients.withLock { clients -> (RPCClient, RPCClient?) in
            if let cached = clients[node], cached.address == address { return (cached.client, nil) }
            let replaced = clients[node]?.client
            let client = make(endpoint, node: node)
            clients[node] = (address, client)
            return (client, replaced)
        }
        if let replaced { Task { await replaced.close() } }
        return client
    }

    /// A new client for node `node` (any node when nil) at `endpoint`, not kept.
    func make(_ endpoint: Endpoint, node: String?) -> RPCClient {
        RPCClient(endpoint, security: security.expecting(PeerExpectation(role: .node, id: node)))
    }

    /// Closes and forgets the client of `node` (taken out of the map, or found down).
    func forget(_ node: String) async {
        await clients.withLock { $0.removeValue(forKey: node) }?.client.close()
    }

    func closeAll() async {
        for client in clients.withLock({ $0.values.map(\.client) }) { await client.close() }
    }
}
