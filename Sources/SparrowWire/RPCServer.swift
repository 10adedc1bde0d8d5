import Foundation
import Logging
import Metrics
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
    /// Calls in progress on this server, bounded by `ConnectionLimits.maxCallsInProgress`
    /// (another front end of the same service, such as the coordinator's HTTP API, can share it).
    public let gate: WorkGate
    let serverChannel: any Channel
    let tracker: ConnectionTracker
    let logger: Logger
    let drainTimeout: Duration

    /// Binds `endpoint` (port 0: any free port; see `address`). With `security`, connections
    /// speak TLS and every call is checked against its policy before it runs.
    /// `limits` bound what each connection may hold and for how long.
    public static func bind(
        _ endpoint: Endpoint, service: any RPCService, security: ServerSecurity = .none, limits: ConnectionLimits = .init(),
        frameLimit: Int = Frame.defaultLimit, drainTimeout: Duration = .seconds(30), logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> RPCServer {
        let tracker = ConnectionTracker()
        let gate = WorkGate(capacity: limits.maxCallsInProgress)
        let budget = FrameBudget(limits: limits, frameLimit: frameLimit)
        Self.show(limits)
        let refused = Counter(label: "sparrow_rpc_connections_refused_total")
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: limits.outboundHighWater / 2, high: limits.outboundHighWater))
            .childChannelInitializer { child in
                guard tracker.opened(child, limit: limits.maxConnections) else {
                    refused.increment()
                    logger.debug("connection refused", metadata: ["rpc.peer": "\(child.remoteAddress?.description ?? "?")", "rpc.reason": "\(limits.maxConnections) connections are open"])
                    return child.eventLoop.makeFailedFuture(RPCError(.resourceExhausted, "too many connections"))
                }
                return child.eventLoop.makeCompletedFuture {
                    try addHandlers(
                        to: child, service: service, security: security, limits: limits, frameLimit: frameLimit, gate: gate, budget: budget,
                        tracker: tracker, logger: logger)
                }
            }
            .bind(host: endpoint.host, port: endpoint.port).get()
        let port = channel.localAddress?.port ?? endpoint.port
        return RPCServer(
            address: Endpoint(host: endpoint.host, port: port), channel: channel, tracker: tracker, gate: gate, logger: logger, drainTimeout: drainTimeout)
    }

    /// Sets up one accepted connection: TLS (with `security.tls`), answers coalesced per loop
    /// turn while several calls are in flight, the connection's guard, the frame codec and the
    /// calls. Runs on the channel's event loop.
    static func addHandlers(
        to child: any Channel, service: any RPCService, security: ServerSecurity, limits: ConnectionLimits, frameLimit: Int, gate: WorkGate,
        budget: FrameBudget, tracker: ConnectionTracker, logger: Logger
    ) throws {
        let peer = child.remoteAddress?.description ?? "?"
        if let tls = security.tls {
            try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.serverContext(security.clientCertificates)))
        }
        let state = ConnectionState(limits: limits)
        try child.pipeline.syncOperations.addHandlers([
            FlushCoalescingHandler { state.machine.inFlight > 1 },
            ConnectionGuardHandler(state: state, budget: budget, peer: peer, logger: logger),
            ByteToMessageHandler(EnvelopeDecoder(limit: frameLimit)),
            MessageToByteHandler(EnvelopeEncoder(limit: frameLimit)),
            ServerConnectionHandler(
                service: service, security: security, state: state, gate: gate, tracker: tracker, frameLimit: frameLimit, peer: peer, logger: logger),
        ])
    }

    /// Serves `service` on `channel` with the handlers a server gives each connection it accepts
    /// (with a bound on calls in progress of its own), without a listener: for driving the
    /// server's handling of a byte stream through an `EmbeddedChannel`, as the fuzzers do. Runs
    /// on the channel's event loop.
    public static func serve(
        connection channel: any Channel, service: any RPCService, security: ServerSecurity = .none, limits: ConnectionLimits = .init(),
        frameLimit: Int = Frame.defaultLimit, logger: Logger
    ) throws {
        try addHandlers(
            to: channel, service: service, security: security, limits: limits, frameLimit: frameLimit,
            gate: WorkGate(capacity: limits.maxCallsInProgress), budget: FrameBudget(limits: limits, frameLimit: frameLimit),
            tracker: ConnectionTracker(), logger: logger)
    }

    init(address: Endpoint, channel: any Channel, tracker: ConnectionTracker, gate: WorkGate, logger: Logger, drainTimeout: Duration) {
        self.address = address
        self.gate = gate
        serverChannel = channel
        self.tracker = tracker
        self.logger = logger
        self.drainTimeout = drainTimeout
    }

    /// Publishes the limits as gauges, `sparrow_rpc_limit{limit}`.
    static func show(_ limits: ConnectionLimits) {
        for (name, value) in [
            ("max_connections", Double(limits.maxConnections)), ("idle_timeout_seconds", limits.idleTimeout.seconds),
            ("frame_timeout_seconds", limits.frameTimeout.seconds), ("max_in_flight", Double(limits.maxInFlight)),
            ("outbound_high_water_bytes", Double(limits.outboundHighWater)), ("max_calls_in_progress", Double(limits.maxCallsInProgress)),
            ("max_partial_frame_bytes", Double(limits.maxPartialFrameBytes)),
        ] {
            Gauge(label: "sparrow_rpc_limit", dimensions: [("limit", name)]).record(value)
        }
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

    /// Records a new connection; false (and not recorded) when `limit` are open already.
    func opened(_ channel: any Channel, limit: Int) -> Bool {
        let id = ObjectIdentifier(channel)
        let admitted = state.withLock { state -> Bool in
            guard state.channels.count < limit else { return false }
            state.channels[id] = channel
            return true
        }
        if admitted { channel.closeFuture.whenComplete { _ in _ = self.state.withLock { $0.channels.removeValue(forKey: id) } } }
        return admitted
    }

    var open: [any Channel] { state.withLock { Array($0.channels.values) } }
    var inflight: Int { state.withLock { $0.inflight } }
    func begin() { state.withLock { $0.inflight += 1 } }
    func end() { state.withLock { $0.inflight -= 1 } }
}
