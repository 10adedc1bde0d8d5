import Foundation
import NIOCore
import NIOSSL
import NIOTLS
import SparrowSecurity
import Synchronization
import X509

/// Whether a TLS server asks its clients for a certificate.
public enum ClientCertificates: Sendable {
    /// Every client must present one issued by the cluster CA (shard nodes: only cluster processes call them).
    case required
    /// A client may present one (cluster processes, operators) or come with an API key instead (coordinators).
    case optional
}

/// One process's TLS material, reloadable while it serves (SIGHUP): new handshakes present the
/// reloaded certificate and trust the reloaded CA; connections already open keep theirs.
public final class TLSIdentity: Sendable {
    public let files: TLSFiles
    private struct Material {
        var identity: PeerIdentity?
        var notValidAfter: Date?
        var required: NIOSSLContext?
        var optional: NIOSSLContext?
        var client: NIOSSLContext
        var server: (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey)?
    }
    private let material: Mutex<Material>

    public init(files: TLSFiles) throws {
        self.files = files
        material = Mutex(try Self.load(files))
    }

    /// Rereads the files; on any error the material in force stays.
    public func reload() throws {
        let next = try Self.load(files)
        material.withLock { $0 = next }
    }

    /// Who this process is, as its certificate says (nil: no certificate, a client only).
    public var identity: PeerIdentity? { material.withLock { $0.identity } }

    /// When its certificate expires.
    public var notValidAfter: Date? { material.withLock { $0.notValidAfter } }

    /// The context for a server's new connection (a server is made only with a certificate: `init(serverFiles:)`).
    func serverContext(_ clients: ClientCertificates) -> NIOSSLContext {
        material.withLock { (clients == .required ? $0.required : $0.optional)! }
    }

    /// Material for a server, which must have a certificate and key.
    public convenience init(serverFiles files: TLSFiles) throws {
        guard files.certificate != nil, files.key != nil else {
            throw SecurityError.invalid("a TLS server needs its certificate and key (--tls-cert, --tls-key) besides the CA")
        }
        try self.init(files: files)
    }

    /// The context for a client's new connection (it presents this process's certificate).
    public var clientContext: NIOSSLContext { material.withLock { $0.client } }

    /// A server configuration whose certificate and key follow `reload` on every handshake (for
    /// servers that take a configuration rather than a context, such as the HTTP server).
    public func serverConfiguration(_ clients: ClientCertificates) throws -> TLSConfiguration {
        var configuration = try Self.serverConfiguration(files, clients)
        configuration.sslContextCallback = { [weak self] _, promise in
            guard let self, let (chain, key) = self.material.withLock({ $0.server }) else { return promise.succeed(.noChanges) }
            var change = NIOSSLContextConfigurationOverride()
            change.certificateChain = chain.map { .certificate($0) }
            change.privateKey = .privateKey(key)
            promise.succeed(change)
        }
        return configuration
    }

    private static func load(_ files: TLSFiles) throws -> Material {
        _ = try certificates(files.ca)
        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv12
        client.trustRoots = .file(files.ca)
        client.certificateVerification = .noHostnameVerification   // peers are checked by the identity they name
        guard let certificatePath = files.certificate, let keyPath = files.key else {
            return Material(client: try context(client, files))
        }
        let chain = try certificates(certificatePath)
        let key = try privateKey(keyPath)
        let parsed = try Certificate(derEncoded: try chain[0].toDERBytes())
        guard let identity = parsed.sparrowIdentity else {
            throw SecurityError.badFile(certificatePath, "names no Sparrow identity (a sparrow://ROLE/ID subject name): issue it with `sparrow certs issue`")
        }
        client.certificateChain = chain.map { .certificate($0) }
        client.privateKey = .privateKey(key)
        return Material(
            identity: identity, notValidAfter: parsed.notValidAfter,
            required: try context(try serverConfiguration(files, .required), files),
            optional: try context(try serverConfiguration(files, .optional), files),
            client: try context(client, files), server: (chain, key))
    }

    private static func context(_ configuration: TLSConfiguration, _ files: TLSFiles) throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            let named = [files.certificate, files.key, files.ca].compactMap { $0 }.joined(separator: ", ")
            throw SecurityError.badFile(files.certificate ?? files.ca, "cannot make a TLS context from \(named): \(error)")
        }
    }

    private static func serverConfiguration(_ files: TLSFiles, _ clients: ClientCertificates) throws -> TLSConfiguration {
        guard let certificate = files.certificate, let key = files.key else {
            throw SecurityError.invalid("a TLS server needs its certificate and key (--tls-cert, --tls-key) besides the CA")
        }
        var configuration = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: try certificates(certificate).map { .certificate($0) }, privateKey: .privateKey(try privateKey(key)), trustRoots: .file(files.ca))
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = clients == .required ? .noHostnameVerification : .optionalVerification
        return configuration
    }

    private static func privateKey(_ path: String) throws -> NIOSSLPrivateKey {
        do {
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            throw SecurityError.badFile(path, "not a PEM private key (\(error))")
        }
    }

    private static func certificates(_ path: String) throws -> [NIOSSLCertificate] {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw SecurityError.badFile(path, "not a PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw SecurityError.badFile(path, "holds no certificate") }
        return chain
    }

    /// The Sparrow identity in the certificate a TLS peer presented (nil: none, or none named).
    static func identity(of certificate: NIOSSLCertificate?) -> PeerIdentity? {
        guard let certificate, let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
        return parsed.sparrowIdentity
    }
}

/// What a client expects of the server it calls: the role its certificate names, and the id
/// when the caller knows it (a coordinator calling node `node-1` accepts only `node:node-1`).
public struct PeerExpectation: Sendable, Equatable {
    public var role: PeerIdentity.Role
    public var id: String?

    public init(role: PeerIdentity.Role, id: String? = nil) {
        self.role = role
        self.id = id
    }

    func check(_ identity: PeerIdentity?) -> String? {
        guard let identity else { return "the server's certificate names no Sparrow identity" }
        if identity.role != role || (id != nil && identity.id != id) {
            return "the server is \(identity), expected \(role.rawValue):\(id ?? "any")"
        }
        return nil
    }
}

/// How a client authenticates itself and its server: TLS with this process's certificate and
/// the expected server identity, and an API key sent with every request.
public struct ClientSecurity: Sendable {
    public var tls: TLSIdentity?
    public var expectedPeer: PeerExpectation?
    public var apiKey: String?

    public init(tls: TLSIdentity? = nil, expectedPeer: PeerExpectation? = nil, apiKey: String? = nil) {
        self.tls = tls
        self.expectedPeer = expectedPeer
        self.apiKey = apiKey
    }

    /// Plaintext, no key.
    public static let none = ClientSecurity()

    /// The same, expecting `peer` instead.
    public func expecting(_ peer: PeerExpectation) -> ClientSecurity {
        var copy = self
        copy.expectedPeer = peer
        return copy
    }
}

/// Fails a client connection whose server does not present the expected identity, and
/// completes `verified` once it does: no request is written before.
final class PeerVerificationHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let expected: PeerExpectation?
    private let verified: EventLoopPromise<Void>
    private var done = false

    init(expected: PeerExpectation?, verified: EventLoopPromise<Void>) {
        self.expected = expected
        self.verified = verified
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            let identity = TLSIdentity.identity(of: try? context.pipeline.syncOperations.nioSSL_peerCertificate())
            if let expected, let reason = expected.check(identity) {
                finish(.failure(RPCError(.unauthenticated, reason)))
                context.close(promise: nil)
            } else {
                finish(.success(()))
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(RPCError.unavailable("TLS: \(error)")))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(RPCError.unavailable("the connection closed during the TLS handshake")))
        context.fireChannelInactive()
    }

    private func finish(_ result: Result<Void, any Error>) {
        guard !done else { return }
        done = true
        verified.completeWith(result)
    }
}
