import Foundation
import Logging
import Metrics
import NIOCore
import NIOSSL
import NIOTLS
import SparrowSecurity

/// One connection's calls: each request runs in its own task (a CANCEL cancels it), except
/// those the service answers immediately, which run as they are read; their responses go out
/// together once the read is done. Every request is first admitted by the server's security
/// (its caller is the TLS peer's certificate identity, or the request's API key); a refused one
/// is answered at once with `unauthenticated` or `permission_denied` and never reaches the service.
final class ServerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = Sparrow_V1_Envelope
    typealias OutboundOut = Sparrow_V1_Envelope

    let service: any RPCService
    let security: ServerSecurity
    let state: ConnectionState
    let gate: WorkGate
    let tracker: ConnectionTracker
    let frameLimit: Int
    let peer: String
    let logger: Logger
    private var running: [UInt64: Task<Void, Never>] = [:]
    /// Responses written since the last flush.
    private var unflushed = false
    /// Calls answered at once since the read began: past `immediatePerRead`, a read's calls get
    /// tasks (and the in-flight cap), so that a client that pipelines thousands of calls does not
    /// hold the event loop, and the other connections on it, for all of them.
    private var immediateThisRead = 0
    static let immediatePerRead = 32
    static let methodNameLimit = 256
    /// The identity the TLS peer's certificate names, once its handshake is done.
    private var certificate: PeerIdentity?
    /// Set when this handler closes the connection: envelopes still decoded from bytes already
    /// read are dropped, not run.
    private var closing = false

    private static let refusals = MetricHandles { Counter(label: $0, dimensions: $1) }

    init(
        service: any RPCService, security: ServerSecurity, state: ConnectionState, gate: WorkGate, tracker: ConnectionTracker, frameLimit: Int,
        peer: String, logger: Logger
    ) {
        self.service = service
        self.security = security
        self.state = state
        self.gate = gate
        self.tracker = tracker
        self.frameLimit = frameLimit
        self.peer = peer
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            certificate = TLSIdentity.identity(of: try? context.pipeline.syncOperations.nioSSL_peerCertificate())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let envelope = unwrapInboundIn(data)
        switch envelope.kind {
        case .request:
            // No method has a long name: a long one is refused before it is looked up anywhere
            // (hashing a 1 MiB name in every table it passes through held the event loop).
            guard envelope.method.utf8.count <= Self.methodNameLimit else {
                respondAtOnce(to: envelope, .failure(RPCError(.unknownMethod, "a method name of \(envelope.method.utf8.count) bytes; names have at most \(Self.methodNameLimit)")), context: context)
                return
            }
            let audit = security.audited(envelope.method) ? Audit(security: security, method: envelope.method, peer: peer) : nil
            let principal: Principal
            switch security.admit(envelope.method, apiKey: envelope.apiKey, certificate: certificate) {
            case .success(let admitted):
                principal = admitted
            case .failure(let refusal):
                audit?.done(caller: refusal.caller, .failure(refusal.error))
                respondAtOnce(to: envelope, .failure(refusal.error), context: context)
                return
            }
            if immediateThisRead < Self.immediatePerRead, let handler = service.immediate(method: envelope.method) {
                immediateThisRead += 1
                let deadline = Self.deadline(of: envelope)
                let outcome = Result { try Self.checkStart(deadline); return try handler(Array(envelope.payload), deadline) }
                audit?.done(caller: principal.description, outcome)
                respondAtOnce(to: envelope, outcome, context: context)
            } else {
                switch admitWork(envelope.method) {
                case .failure(let refusal):
                    audit?.done(caller: principal.description, .failure(refusal))
                    respondAtOnce(to: envelope, .failure(refusal), context: context)
                case .success(let place):
                    start(envelope, place: place, audit: audit.map { ($0, principal.description) }, context: context)
                }
            }
        case .cancel:
            running[envelope.requestID]?.cancel()
        default:
            logger.warning("closing connection", metadata: ["rpc.peer": "\(peer)", "rpc.reason": "a client sent an envelope of kind \(envelope.kind)"])
            closing = true
            context.close(promise: nil)
        }
    }

    /// A place a call holds in its method's admission (see `RPCService.admission(method:)`).
    typealias Place = (admission: any CallAdmission, started: ContinuousClock.Instant)

    /// Takes a place for a call of `method` that runs in a task, on this connection, on the
    /// server, and in the method's admission if it has one; else the refusal to answer at once.
    private func admitWork(_ method: String) -> Result<Place?, RPCError> {
        guard state.machine.start() else {
            Self.refusals("sparrow_rpc_calls_refused_total", [("reason", "in_flight")]).increment()
            return .failure(RPCError(.resourceExhausted, "\(state.machine.limits.maxInFlight) calls are in flight on this connection; wait for answers or open another connection"))
        }
        guard gate.tryEnter() else {
            state.machine.finish(now: .now)
            Self.refusals("sparrow_rpc_calls_refused_total", [("reason", "server_busy")]).increment()
            return .failure(gate.refusal)
        }
        guard let admission = service.admission(method: method) else { return .success(nil) }
        do {
            return .success((admission, try admission.enter()))
        } catch {
            gate.leave()
            state.machine.finish(now: .now)
            Self.refusals("sparrow_rpc_calls_refused_total", [("reason", "admission")]).increment()
            return .failure(RPCError(error))
        }
    }

    /// Writes an answer made on the event loop; it goes out with the read's other answers.
    private func respondAtOnce(to envelope: Sparrow_V1_Envelope, _ outcome: Result<[UInt8], any Error>, context: ChannelHandlerContext) {
        // In flight until its response is written out, so that a draining server does not close
        // the connection under a large answer still in the send buffer.
        tracker.begin()
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { [tracker] _ in tracker.end() }
        context.write(wrapOutboundOut(Self.response(to: envelope, outcome, frameLimit: frameLimit)), promise: written)
        unflushed = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        immediateThisRead = 0
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    private func start(_ envelope: Sparrow_V1_Envelope, place: Place?, audit: (Audit, String)?, context: ChannelHandlerContext) {
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = envelope.requestID
        tracker.begin()
        running[id] = Self.spawn(envelope, service: service, audit: audit, place: place, frameLimit: frameLimit, channel: context.channel) { [tracker, gate] in
            handler.value.running[id] = nil
            handler.value.state.machine.finish(now: .now)
            gate.leave()
            tracker.end()
        }
    }

    /// Answers one request in its own task; `done` runs on the channel's event loop once the
    /// response is written (or could not be). The call's admission `place` is given back as soon
    /// as the answer is made, before it is written: else a caller that sends its next call on
    /// reading the answer could find its own finished call still holding the place.
    private static func spawn(
        _ envelope: Sparrow_V1_Envelope, service: any RPCService, audit: (Audit, String)?, place: Place?, frameLimit: Int, channel: any Channel,
        done: @escaping @Sendable () -> Void
    ) -> Task<Void, Never> {
        let deadline = deadline(of: envelope)
        return Task {
            let outcome = await answer(envelope, service: service, deadline: deadline)
            if let place { place.admission.leave(started: place.started) }
            if let (audit, caller) = audit { audit.done(caller: caller, outcome) }
            channel.writeAndFlush(response(to: envelope, outcome, frameLimit: frameLimit)).whenComplete { _ in done() }
        }
    }

    static func answer(_ request: Sparrow_V1_Envelope, service: any RPCService, deadline: ContinuousClock.Instant?) async -> Result<[UInt8], any Error> {
        do {
            try checkStart(deadline)
            return .success(try await service.call(method: request.method, payload: Array(request.payload), deadline: deadline))
        } catch {
            return .failure(error)
        }
    }

    /// When the caller stops waiting for `request` (nil: no deadline).
    static func deadline(of request: Sparrow_V1_Envelope) -> ContinuousClock.Instant? {
        request.timeoutMicros > 0 ? ContinuousClock.now + .microseconds(Int64(clamping: request.timeoutMicros)) : nil
    }

    /// Fails a call whose deadline passed before it started.
    static func checkStart(_ deadline: ContinuousClock.Instant?) throws {
        if let deadline, ContinuousClock.now >= deadline { throw RPCError.deadlineExceeded("the deadline passed before the call started") }
    }

    /// The response envelope to `request`: the payload, or the failure as a status. Whatever the
    /// request held, the answer fits in any peer's frame: the method is echoed only when short,
    /// and error messages are cut to `RPCError.messageLimit`.
    static func response(to request: Sparrow_V1_Envelope, _ outcome: Result<[UInt8], any Error>, frameLimit: Int) -> Sparrow_V1_Envelope {
        var response = Sparrow_V1_Envelope()
        response.requestID = request.requestID
        response.kind = .response
        if request.method.utf8.count <= 256 { response.method = request.method }
        do {
            let payload = try outcome.get()
            // Leave room for the envelope's own fields.
            guard payload.count <= frameLimit - 1024 else {
                throw RPCError(.internal, "the response (\(payload.count) bytes) exceeds the frame limit of \(frameLimit) bytes; ask for less")
            }
            response.payload = Data(payload)
        } catch {
            response.status = RPCError(error).bounded.status
        }
        return response
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("closing connection", metadata: ["rpc.peer": "\(peer)", "rpc.reason": "\(error)"])
        closing = true
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        for task in running.values { task.cancel() }
        context.fireChannelInactive()
    }
}

/// The audit line of one write or control call, written when its outcome is known.
struct Audit: Sendable {
    let security: ServerSecurity
    let method: String
    let peer: String

    func done(caller: String, _ outcome: Result<[UInt8], any Error>) {
        let code: String
        switch outcome {
        case .success: code = "ok"
        case .failure(let error): code = RPCError(error).code.name
        }
        security.record(method, caller: caller, peer: peer, outcome: code)
    }
}

/// An error of a subsystem that knows its wire form (a code and a message for the caller).
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}

extension RPCError {
    /// Any error as a wire error: itself, its own wire form, `cancelled`, or `internal` with its description.
    public init(_ error: any Error) {
        switch error {
        case let error as RPCError: self = error
        case let error as any RPCErrorConvertible: self = error.rpcError
        case is CancellationError: self = RPCError(.cancelled, "the client cancelled the call")
        default: self = RPCError(.internal, "\(error)")
        }
    }
}
