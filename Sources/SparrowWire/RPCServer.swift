import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import SparrowSecurity
import Synchronization

/// Serves an `RPCService` over framed TCP. Requests on one connection run concurrently and
/// are answered as they finish (out of order). A connection that sends an invalid frame is
/// closed with a logged reason; the others are untouched.
///
/// As a `Service`: on graceful shutdown it stops accepting, lets in-flight calls finish
/// (up to `drainTimeout`), then closes the remaining connections.
public final class RPCServer: Service, Sendable {
    public let address: Endpoint
    let serverChannel: any Channel
    let tracker: ConnectionTracker
    let logger: Logger
    let drainTimeout: Duration

    /// Binds `endpoint` (port 0: any free port; see `address`). With `security`, connections
    /// speak TLS and every call is checked against its policy before it runs.
    public static func bind(
        _ endpoint: Endpoint, service: any RPCService, security: ServerSecurity = .none, frameLimit: Int = Frame.defaultLimit,
        drainTimeout: Duration = .seconds(30), logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> RPCServer {
        let tracker = ConnectionTracker()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { child in
                tracker.opened(child)
                let peer = child.remoteAddress?.description ?? "?"
                return child.eventLoop.makeCompletedFuture {
                    if let tls = security.tls {
                        try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.serverContext(security.clientCertificates)))
                    }
                    try child.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(EnvelopeDecoder(limit: frameLimit)),
                        MessageToByteHandler(EnvelopeEncoder(limit: frameLimit)),
                        ServerConnectionHandler(
                            service: service, security: security, tracker: tracker, frameLimit: frameLimit, peer: peer, logger: logger),
                    ])
                }
            }
            .bind(host: endpoint.host, port: endpoint.port).get()
        let port = channel.localAddress?.port ?? endpoint.port
        return RPCServer(address: Endpoint(host: endpoint.host, port: port), channel: channel, tracker: tracker, logger: logger, drainTimeout: drainTimeout)
    }

    init(address: Endpoint, channel: any Channel, tracker: ConnectionTracker, logger: Logger, drainTimeout: Duration) {
        self.address = address
        serverChannel = channel
        self.tracker = tracker
        self.logger = logger
        self.drainTimeout = drainTimeout
    }

    /// Connections open now.
    public var openConnections: Int { tracker.open.count }

    public func run() async throws {
        logger.info("rpc server listening", metadata: ["rpc.address": "\(address)"])
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Stops accepting, waits for in-flight calls, closes every connection.
    public func shutdown() async {
        logger.info("rpc server draining", metadata: ["rpc.inflight": "\(tracker.inflight)"])
        try? await serverChannel.close()
        let deadline = ContinuousClock.now + drainTimeout
        while tracker.inflight > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        for channel in tracker.open { try? await channel.close() }
        logger.info("rpc server stopped", metadata: ["rpc.address": "\(address)"])
    }
}

/// Open connections and calls in flight, for draining.
final class ConnectionTracker: Sendable {
    private let state = Mutex<(channels: [ObjectIdentifier: any Channel], inflight: Int)>(([:], 0))

    func opened(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock { $0.channels[id] = channel }
        channel.closeFuture.whenComplete { _ in _ = self.state.withLock { $0.channels.removeValue(forKey: id) } }
    }

    var open: [any Channel] { state.withLock { Array($0.channels.values) } }
    var inflight: Int { state.withLock { $0.inflight } }
    func begin() { state.withLock { $0.inflight += 1 } }
    func end() { state.withLock { $0.inflight -= 1 } }
}
