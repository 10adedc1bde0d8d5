import NIOCore
import NIOPosix
import NIOSSL
import SwiftProtobuf
import Synchronization

/// Calls one server over one connection per event loop, many calls in flight on each.
/// A call made on an event loop's thread (as every task is, once `NIOSingletons` runs Swift
/// concurrency on the event loops) travels on that loop's connection, so the request is written
/// and its answer read without waking another thread. Connections open on first use and reopen
/// after they close. A call that outlives its timeout fails with `deadlineExceeded` and tells the
/// server to cancel it. With `security`, connections speak TLS and present this process's
/// certificate, the server must present the identity expected of it before any request is
/// written, and every request carries the API key.
public final class RPCClient: Sendable {
    public let endpoint: Endpoint
    public let security: ClientSecurity
    let group: any EventLoopGroup
    let frameLimit: Int
    let connectTimeout: Duration
    /// The connection of each event loop that has made a call, by the loop's identity.
    private let connections = Mutex<[ObjectIdentifier: Connection]>([:])
    private let nextID = Atomic<UInt64>(1)

    public init(
        _ endpoint: Endpoint, security: ClientSecurity = .none, frameLimit: Int = Frame.defaultLimit,
        connectTimeout: Duration = .seconds(2), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.endpoint = endpoint
        self.security = security
        self.group = group
        self.frameLimit = frameLimit
        self.connectTimeout = connectTimeout
    }

    /// Calls `method`; throws `RPCError` (the server's status, `unavailable` when the server
    /// cannot be reached or the connection drops, `deadlineExceeded` after `timeout`).
    public func call<Request: Message, Response: Message>(
        _ method: String, _ request: Request, timeout: Duration, as: Response.Type = Response.self
    ) async throws -> Response {
        // The timeout covers the connection too: a server that accepts and never completes the
        // TLS handshake (a stopped process: the kernel still accepts) must not hold the call.
        let started = ContinuousClock.now
        let channel = try await connection(within: timeout)
        let timeout = timeout - (ContinuousClock.now - started)
        guard timeout > .zero else { throw RPCError.deadlineExceeded("no answer from \(endpoint) within the call's timeout: connecting took it all") }
        var envelope = Sparrow_V1_Envelope()
        envelope.requestID = nextID.add(1, ordering: .relaxed).oldValue
        envelope.kind = .request
        envelope.method = method
        envelope.timeoutMicros = UInt64(max(1, timeout.microseconds))
        envelope.payload = try request.serializedData()
        if let apiKey = security.apiKey { envelope.apiKey = apiKey }
        let id = envelope.requestID
        let promise = channel.eventLoop.makePromise(of: Sparrow_V1_Envelope.self)
        // Giving up fails the call here as well as in the pipeline: a connection that closed
        // meanwhile has no handler left to fail it (completing a promise twice does nothing).
        let giveUp = { @Sendable (error: RPCError) in
            promise.fail(error)
            channel.writeAndFlush(ClientOutbound.cancel(id, error), promise: nil)
        }
        let timer = channel.eventLoop.scheduleTask(in: .microseconds(timeout.microseconds)) {
            giveUp(RPCError.deadlineExceeded("no answer from \(self.endpoint) within \(timeout)"))
        }
        let endpoint = endpoint
        channel.writeAndFlush(ClientOutbound.call(envelope, promise)).whenFailure { error in
            promise.fail(RPCError.unavailable("connection to \(endpoint) closed before the call was sent: \(error)"))
        }
        let response = try await withTaskCancellationHandler {
            defer { timer.cancel() }
            return try await promise.futureResult.get()
        } onCancel: {
            giveUp(RPCError(.cancelled, "the caller cancelled the call"))
        }
        guard response.status.code == .ok else { throw RPCError(response.status.code, response.status.message) }
        do {
            return try Response(serializedBytes: Array(response.payload))
        } catch {
            throw RPCError(.internal, "\(endpoint) answered \(method) with an invalid \(Response.protoMessageName): \(error)")
        }
    }

    /// Closes every connection; calls in flight fail with `unavailable`.
    public func close() async {
        let open = connections.withLock { open in
            defer { open = [:] }
            return Array(open.values)
        }
        for connection in open {
            switch connection {
            case .connecting(let future): try? await future.get().close()
            case .open(let channel): try? await channel.close()
            }
        }
    }

    /// A connection being opened, or open (then a call takes it without waiting).
    private enum Connection {
        case connecting(EventLoopFuture<any Channel>)
        case open(any Channel)

        var identity: ObjectIdentifier {
            switch self {
            case .connecting(let future): ObjectIdentifier(future)
            case .open(let channel): ObjectIdentifier(channel)
            }
        }
    }

    /// The connection of the caller's event loop (any loop of the group for other callers),
    /// waited for at most `timeout`.
    private func connection(within timeout: Duration) async throws -> any Channel {
        let loop = group.any()
        let key = ObjectIdentifier(loop)
        let state = connections.withLock { open in
            if let existing = open[key] { return existing }
            let connecting = connect(on: loop)
            open[key] = .connecting(connecting)
            // Keep the channel once it is open; forget a failed or closed connection so that the
            // next call reconnects.
            connecting.whenComplete { [weak self] result in
                switch result {
                case .success(let channel):
                    self?.replace(key, .connecting(connecting), with: .open(channel))
                    channel.closeFuture.whenComplete { [weak self] _ in self?.replace(key, .open(channel), with: nil) }
                case .failure:
                    self?.replace(key, .connecting(connecting), with: nil)
                }
            }
            return .connecting(connecting)
        }
        switch state {
        case .open(let channel):
            return channel
        case .connecting(let future):
            let bounded = future.eventLoop.makePromise(of: (any Channel).self)
            let endpoint = endpoint
            let timer = future.eventLoop.scheduleTask(in: .microseconds(timeout.microseconds)) {
                bounded.fail(RPCError.deadlineExceeded("no connection to \(endpoint) within \(timeout)"))
            }
            future.whenComplete { _ in timer.cancel() }
            future.cascade(to: bounded)
            do {
                // A caller that gives up (a hedge won) stops waiting at once; the attempt goes on
                // for the next call.
                return try await withTaskCancellationHandler {
                    try await bounded.futureResult.get()
                } onCancel: {
                    bounded.fail(RPCError(.cancelled, "the caller cancelled the call"))
                }
            } catch let error as RPCError where error.code == .deadlineExceeded || error.code == .cancelled {
                throw error
            } catch let error as RPCError where error.code == .unauthenticated {
                throw RPCError(.unauthenticated, "\(endpoint): \(error.message)")
            } catch {
                throw RPCError.unavailable("cannot connect to \(endpoint): \(error)")
            }
        }
    }

    /// Sets the connection of loop `key` to `next` if it is still `current` (nil: none).
    private func replace(_ key: ObjectIdentifier, _ current: Connection, with next: Connection?) {
        connections.withLock { open in
            if open[key]?.identity == current.identity { open[key] = next }
        }
    }

    /// A connection, usable once it is open and (with TLS) its server's identity is checked.
    private func connect(on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        let limit = frameLimit
        let endpoint = endpoint
        let security = security
        let verified = loop.makePromise(of: Void.self)
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(.microseconds(connectTimeout.microseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = security.tls {
                        let serverName = endpoint.host.first?.isLetter == true ? endpoint.host : nil
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls.clientContext, serverHostname: serverName))
                        try channel.pipeline.syncOperations.addHandler(PeerVerificationHandler(expected: security.expectedPeer, verified: verified))
                    } else {
                        verified.succeed()
                    }
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(EnvelopeDecoder(limit: limit)),
                        MessageToByteHandler(EnvelopeEncoder(limit: limit)),
                        ClientConnectionHandler(endpoint: endpoint),
                    ])
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
        connected.whenFailure { verified.fail($0) }
        // The handshake is bounded like the TCP connect: a peer that accepts and then says
        // nothing (a stopped process) is dropped, and the next call connects afresh.
        let handshakeTimeout = connectTimeout
        connected.whenSuccess { _ in
            let timer = loop.scheduleTask(in: .microseconds(handshakeTimeout.microseconds)) {
                verified.fail(RPCError.unavailable("\(endpoint) accepted the connection but completed no TLS handshake within \(handshakeTimeout)"))
            }
            verified.futureResult.whenComplete { _ in timer.cancel() }
        }
        return connected.flatMap { channel in
            verified.futureResult.map { channel }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
    }
}

/// What the client writes into its pipeline.
enum ClientOutbound: Sendable {
    /// A request whose response completes the promise.
    case call(Sparrow_V1_Envelope, EventLoopPromise<Sparrow_V1_Envelope>)
    /// Gives up on a call: fails its promise with the error and tells the server.
    case cancel(UInt64, RPCError)
}

/// Matches responses to waiting calls by request id.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = Sparrow_V1_Envelope
    typealias OutboundIn = ClientOutbound
    typealias OutboundOut = Sparrow_V1_Envelope

    let endpoint: Endpoint
    private var pending: [UInt64: EventLoopPromise<Sparrow_V1_Envelope>] = [:]

    init(endpoint: Endpoint) {
        self.endpoint = endpoint
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .call(let envelope, let response):
            guard context.channel.isActive else {
                response.fail(RPCError.unavailable("connection to \(endpoint) is closed"))
                promise?.succeed()
                return
            }
            pending[envelope.requestID] = response
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let endpoint = endpoint
            context.write(wrapOutboundOut(envelope)).whenFailure { error in
                handler.value.pending.removeValue(forKey: envelope.requestID)?.fail(RPCError(.internal, "cannot send to \(endpoint): \(error)"))
            }
            promise?.succeed()
        case .cancel(let id, let error):
            guard let waiting = pending.removeValue(forKey: id) else {
                promise?.succeed()
                return
            }
            waiting.fail(error)
            var envelope = Sparrow_V1_Envelope()
            envelope.requestID = id
            envelope.kind = .cancel
            context.write(wrapOutboundOut(envelope), promise: promise)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.kind == .response else { return }
        pending.removeValue(forKey: envelope.requestID)?.succeed(envelope)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(RPCError.unavailable("connection to \(endpoint) failed: \(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RPCError.unavailable("connection to \(endpoint) closed"))
        context.fireChannelInactive()
    }

    private func failAll(_ error: RPCError) {
        let waiting = pending
        pending = [:]
        for promise in waiting.values { promise.fail(error) }
    }
}
