import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
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

    /// Binds `endpoint` (port 0: any free port; see `address`).
    public static func bind(
        _ endpoint: Endpoint, service: any RPCService, frameLimit: Int = Frame.defaultLimit,
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
                    try child.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(EnvelopeDecoder(limit: frameLimit)),
                        MessageToByteHandler(EnvelopeEncoder(limit: frameLimit)),
                        ServerConnectionHandler(service: service, tracker: tracker, frameLimit: frameLimit, peer: peer, logger: logger),
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

/// One connection's calls: each request runs in its own task (a CANCEL cancels it), except
/// those the service answers immediately, which run as they are read; their responses go out
/// together once the read is done.
final class ServerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Sparrow_V1_Envelope
    typealias OutboundOut = Sparrow_V1_Envelope

    let service: any RPCService
    let tracker: ConnectionTracker
    let frameLimit: Int
    let peer: String
    let logger: Logger
    private var running: [UInt64: Task<Void, Never>] = [:]
    /// Responses written since the last flush.
    private var unflushed = false

    init(service: any RPCService, tracker: ConnectionTracker, frameLimit: Int, peer: String, logger: Logger) {
        self.service = service
        self.tracker = tracker
        self.frameLimit = frameLimit
        self.peer = peer
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        switch envelope.kind {
        case .request:
            if let handler = service.immediate(method: envelope.method) {
                // In flight until its response is written out, so that a draining server does
                // not close the connection under a large answer still in the send buffer.
                tracker.begin()
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.whenComplete { [tracker] _ in tracker.end() }
                let deadline = Self.deadline(of: envelope)
                let outcome = Result { try Self.checkStart(deadline); return try handler(Array(envelope.payload), deadline) }
                context.write(wrapOutboundOut(Self.response(to: envelope, outcome, frameLimit: frameLimit)), promise: written)
                unflushed = true
            } else {
                start(envelope, context: context)
            }
        case .cancel:
            running[envelope.requestID]?.cancel()
        default:
            logger.warning("closing connection", metadata: ["rpc.peer": "\(peer)", "rpc.reason": "a client sent an envelope of kind \(envelope.kind)"])
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    private func start(_ envelope: Sparrow_V1_Envelope, context: ChannelHandlerContext) {
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = envelope.requestID
        tracker.begin()
        running[id] = Self.spawn(envelope, service: service, frameLimit: frameLimit, channel: context.channel) { [tracker] in
            handler.value.running[id] = nil
            tracker.end()
        }
    }

    /// Answers one request in its own task; `done` runs on the channel's event loop once the
    /// response is written (or could not be).
    private static func spawn(
        _ envelope: Sparrow_V1_Envelope, service: any RPCService, frameLimit: Int, channel: any Channel,
        done: @escaping @Sendable () -> Void
    ) -> Task<Void, Never> {
        let deadline = deadline(of: envelope)
        return Task {
            let response = await answer(envelope, service: service, deadline: deadline, frameLimit: frameLimit)
            channel.writeAndFlush(response).whenComplete { _ in done() }
        }
    }

    static func answer(
        _ request: Sparrow_V1_Envelope, service: any RPCService, deadline: ContinuousClock.Instant?, frameLimit: Int
    ) async -> Sparrow_V1_Envelope {
        let outcome: Result<[UInt8], any Error>
        do {
            try checkStart(deadline)
            outcome = .success(try await service.call(method: request.method, payload: Array(request.payload), deadline: deadline))
        } catch {
            outcome = .failure(error)
        }
        return response(to: request, outcome, frameLimit: frameLimit)
    }

    /// When the caller stops waiting for `request` (nil: no deadline).
    static func deadline(of request: Sparrow_V1_Envelope) -> ContinuousClock.Instant? {
        request.timeoutMicros > 0 ? ContinuousClock.now + .microseconds(Int64(clamping: request.timeoutMicros)) : nil
    }

    /// Fails a call whose deadline passed before it started.
    static func checkStart(_ deadline: ContinuousClock.Instant?) throws {
        if let deadline, ContinuousClock.now >= deadline { throw RPCError.deadlineExceeded("the deadline passed before the call started") }
    }

    /// The response envelope to `request`: the payload, or the failure as a status.
    static func response(to request: Sparrow_V1_Envelope, _ outcome: Result<[UInt8], any Error>, frameLimit: Int) -> Sparrow_V1_Envelope {
        var response = Sparrow_V1_Envelope()
        response.requestID = request.requestID
        response.kind = .response
        response.method = request.method
        do {
            let payload = try outcome.get()
            // Leave room for the envelope's own fields.
            guard payload.count <= frameLimit - 1024 else {
                throw RPCError(.internal, "the response (\(payload.count) bytes) exceeds the frame limit of \(frameLimit) bytes; ask for less")
            }
            response.payload = Data(payload)
        } catch let error as RPCError {
            response.status = error.status
        } catch is CancellationError {
            response.status = RPCError(.cancelled, "the client cancelled the call").status
        } catch {
            response.status = RPCError(.internal, "\(error)").status
        }
        return response
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("closing connection", metadata: ["rpc.peer": "\(peer)", "rpc.reason": "\(error)"])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        for task in running.values { task.cancel() }
        context.fireChannelInactive()
    }
}
