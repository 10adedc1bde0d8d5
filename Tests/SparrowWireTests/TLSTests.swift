import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import Logging
import SparrowSecurity
import SparrowWire
import Testing

/// Mutual TLS, identities and the access policy over real sockets on 127.0.0.1.
@Suite struct TLSTests {
    /// A CA and certificates for a node, a coordinator and an admin, in a scratch directory.
    struct PKI {
        let directory = NSTemporaryDirectory() + "sparrow-pki-\(UUID().uuidString)"

        init() throws {
            let ca = try CertificateAuthority.create()
            try ca.save(certificatePath: directory + "/ca.pem", keyPath: directory + "/ca.key")
            for identity in [PeerIdentity(role: .node, id: "node-1"), .init(role: .node, id: "node-2"), .init(role: .coordinator, id: "c"), .init(role: .admin, id: "ops")] {
                try ca.issue(identity, hosts: ["127.0.0.1"], days: 1)
                    .save(certificatePath: directory + "/\(identity.id).pem", keyPath: directory + "/\(identity.id).key")
            }
        }

        func identity(_ id: String?) throws -> TLSIdentity {
            try TLSIdentity(files: TLSFiles(ca: directory + "/ca.pem", certificate: id.map { directory + "/\($0).pem" }, key: id.map { directory + "/\($0).key" }))
        }

        func cleanup() { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Health is a read; Upsert a write: what a node answers, under the node policy.
    static func routes() -> RPCRoutes {
        var routes = RPCRoutes()
        routes.immediate(ShardMethod.health) { (_: Sparrow_V1_HealthRequest, _) in Sparrow_V1_HealthResponse() }
        routes.on(ShardMethod.upsert) { (_: Sparrow_V1_UpsertRequest, _) in Sparrow_V1_UpsertResponse() }
        return routes
    }

    func withNode(_ pki: PKI, id: String = "node-1", _ body: (Endpoint) async throws -> Void) async throws {
        let server = try await RPCServer.bind(
            Endpoint(host: "127.0.0.1", port: 0), service: Self.routes(),
            security: ServerSecurity(tls: try pki.identity(id), clientCertificates: .required, policy: .shardNode), logger: Logger(label: "test"))
        do {
            try await body(server.address)
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }

    func upsert(_ client: RPCClient) async throws {
        let _: Sparrow_V1_UpsertResponse = try await client.call(ShardMethod.upsert, Sparrow_V1_UpsertRequest(), timeout: .seconds(5))
    }

    func health(_ client: RPCClient) async throws {
        let _: Sparrow_V1_HealthResponse = try await client.call(ShardMethod.health, Sparrow_V1_HealthRequest(), timeout: .seconds(5))
    }

    /// A server that accepts connections and never speaks (a stopped process: the kernel
    /// completes the TCP handshake, nobody the TLS one): a call ends at its own timeout, and the
    /// connection is given up after the connect timeout, so closing the client returns.
    /// (Before: the call waited for the handshake with no bound, and `close()` with it; a stalled
    /// node held a coordinator's searches past their deadline and its health checks for good.)
    @Test func aCallToAServerThatNeverHandshakesEndsAtItsTimeout() async throws {
        let pki = try PKI()
        defer { pki.cleanup() }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        try #require(listening)
        let endpoint = Endpoint(host: "127.0.0.1", port: Int(UInt16(bigEndian: address.sin_port)))
        let client = RPCClient(endpoint, security: ClientSecurity(tls: try pki.identity("c"), expectedPeer: PeerExpectation(role: .node)), connectTimeout: .milliseconds(500))
        let outcome = Mutex<(error: RPCError, after: Duration)?>(nil)
        let started = ContinuousClock.now
        let call = Task {
            do {
                let _: Sparrow_V1_HealthResponse = try await client.call(ShardMethod.health, Sparrow_V1_HealthRequest(), timeout: .milliseconds(200))
            } catch {
                outcome.withLock { $0 = (RPCError(error), ContinuousClock.now - started) }
            }
        }
        while outcome.withLock({ $0 }) == nil && ContinuousClock.now - started < .seconds(3) { try await Task.sleep(for: .milliseconds(10)) }
        let ended = try #require(outcome.withLock { $0 }, "the call was still waiting for the handshake 3 s later")
        #expect(ended.error.code == .deadlineExceeded && ended.after < .seconds(1), "\(ended)")
        await call.value
        // The connection attempt itself is dropped after the connect timeout: close returns.
        let closing = Task { await client.close() }
        try await Task.sleep(for: .seconds(1))
        let closed = ContinuousClock.now
        await closing.value
        #expect(ContinuousClock.now - closed < .milliseconds(500))
    }

    @Test func aCoordinatorCallsANodeThatPresentsTheExpectedIdentity() async throws {
        let pki = try PKI()
        defer { pki.cleanup() }
        try await withNode(pki) { address in
            let client = RPCClient(address, security: ClientSecurity(tls: try pki.identity("c"), expectedPeer: PeerExpectation(role: .node, id: "node-1")))
            try await upsert(client)
            try await health(client)
            await client.close()
        }
    }

    @Test func aClientRefusesANodeWithAnotherIdentity() async throws {
        let pki = try PKI()
        defer { pki.cleanup() }
        try await withNode(pki, id: "node-2") { address in
            let client = RPCClient(address, security: ClientSecurity(tls: try pki.identity("c"), expectedPeer: PeerExpectation(role: .node, id: "node-1")))
            await #expect(throws: RPCError(.unauthenticated, "\(address): the server is node:node-2, expected node:node-1")) { try await health(client) }
            await client.close()
        }
    }

    @Test func rolesAreCheckedPerMethod() async throws {
        let pki = try PKI()
        defer { pki.cleanup() }
        try await withNode(pki) { address in
            let admin = RPCClient(address, security: ClientSecurity(tls: try pki.identity("ops")))
            try await health(admin)
            await #expect(throws: RPCError(.permissionDenied, "'sparrow.v1.Shard/Upsert' is not allowed to admin:ops (allowed: coordinator)")) { try await upsert(admin) }
            await admin.close()
            let node = RPCClient(address, security: ClientSecurity(tls: try pki.identity("node-2")))
            await #expect(throws: RPCError.self) { try await health(node) }
            await node.close()
        }
    }

    /// The server closes the connection right after the handshake (no client certificate): the
    /// call fails at once instead of waiting for an answer that cannot come.
    @Test func aConnectionRefusedAfterTheHandshakeFailsTheCallPromptly() async throws {
        let pki = try PKI()
        defer { pki.cleanup() }
        try await withNode(pki) { address in
            for security in [ClientSecurity(tls: try pki.identity(nil)), .none] {
                let client = RPCClient(address, security: security)
                let started = ContinuousClock.now
                await #expect(throws: RPCError.self) {
                    let _: Sparrow_V1_UpsertResponse = try await client.call(ShardMethod.upsert, Sparrow_V1_UpsertRequest(), timeout: .seconds(60))
                }
                #expect(ContinuousClock.now - started < .seconds(30))
                await client.close()
            }
        }
    }

    @Test func apiKeysAreCheckedByScope() async throws {
        let pki = try PKI()
        defer { pki.cleanup() }
        let path = pki.directory + "/keys.json"
        var file = APIKeysFile()
        let read = file.create(name: "r", scope: .read)
        try file.save(path)
        var routes = RPCRoutes()
        routes.on(CoordinatorMethod.search) { (_: Sparrow_V1_QueryRequest, _) in Sparrow_V1_QueryResponse() }
        routes.on(CoordinatorMethod.write) { (_: Sparrow_V1_WriteRequest, _) in Sparrow_V1_WriteResponse() }
        let server = try await RPCServer.bind(
            Endpoint(host: "127.0.0.1", port: 0), service: routes,
            security: ServerSecurity(tls: try pki.identity("c"), clientCertificates: .optional, keys: try APIKeyVerifier(path: path), policy: .coordinator),
            logger: Logger(label: "test"))
        let tls = try pki.identity(nil)
        let reader = RPCClient(server.address, security: ClientSecurity(tls: tls, expectedPeer: PeerExpectation(role: .coordinator), apiKey: read))
        let _: Sparrow_V1_QueryResponse = try await reader.call(CoordinatorMethod.search, Sparrow_V1_QueryRequest(), timeout: .seconds(5))
        await #expect(throws: RPCError.self) {
            let _: Sparrow_V1_WriteResponse = try await reader.call(CoordinatorMethod.write, Sparrow_V1_WriteRequest(), timeout: .seconds(5))
        }
        let nobody = RPCClient(server.address, security: ClientSecurity(tls: tls, apiKey: nil))
        await #expect(throws: RPCError(.unauthenticated, "'sparrow.v1.Coordinator/Search' needs an API key of scope read or a cluster certificate (admin, coordinator)")) {
            let _: Sparrow_V1_QueryResponse = try await nobody.call(CoordinatorMethod.search, Sparrow_V1_QueryRequest(), timeout: .seconds(5))
        }
        await reader.close()
        await nobody.close()
        await server.shutdown()
    }
}
