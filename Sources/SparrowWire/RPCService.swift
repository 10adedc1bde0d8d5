import SwiftProtobuf

/// What a server answers: one call at a time, any number concurrently.
public protocol RPCService: Sendable {
    /// Answers `method` with a serialized response; throws `RPCError` for a failed call.
    /// `deadline` is when the caller stops waiting (nil: no deadline).
    func call(method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) async throws -> [UInt8]

    /// The handler of `method` when it never waits (nil: answer it through `call`). The server
    /// runs such a handler on the connection's event loop as soon as the request is read, with
    /// no task, and sends its response with the others answered in the same read.
    func immediate(method: String) -> RPCImmediateHandler?

    /// The bound on `method`'s calls in progress, if it has one: the server takes a place
    /// before the call gets a task, and refuses the call at once, on the event loop, when there
    /// is none.
    func admission(method: String) -> (any CallAdmission)?
}

/// A bound on one method's calls in progress (see `RPCService.admission(method:)`).
public protocol CallAdmission: Sendable {
    /// Takes a place, or throws the refusal (`RESOURCE_EXHAUSTED`); returns when it was taken.
    func enter() throws -> ContinuousClock.Instant
    /// Gives back the place taken at `started`, once the call is done.
    func leave(started: ContinuousClock.Instant)
}

/// A handler that answers at once on the calling thread (see `RPCService.immediate`).
public typealias RPCImmediateHandler = @Sendable ([UInt8], ContinuousClock.Instant?) throws -> [UInt8]

extension RPCService {
    public func immediate(method: String) -> RPCImmediateHandler? { nil }
    public func admission(method: String) -> (any CallAdmission)? { nil }
}

/// An `RPCService` made of typed handlers, one per method name.
public struct RPCRoutes: RPCService {
    public typealias Handler = @Sendable ([UInt8], ContinuousClock.Instant?) async throws -> [UInt8]
    private var handlers: [String: Handler] = [:]
    private var immediateHandlers: [String: RPCImmediateHandler] = [:]
    private var admissions: [String: any CallAdmission] = [:]
    private var requestTypes: [String: any Message.Type] = [:]

    public init() {}

    /// Routes `method` to `body`, decoding its request and encoding its response; with
    /// `admission`, a server runs at most what it admits.
    public mutating func on<Request: Message, Response: Message>(
        _ method: String, admission: (any CallAdmission)? = nil, _ body: @escaping @Sendable (Request, ContinuousClock.Instant?) async throws -> Response
    ) {
        handlers[method] = { payload, deadline in try await body(Self.decode(payload, method), deadline).serializedBytes() }
        requestTypes[method] = Request.self
        admissions[method] = admission
    }

    /// Routes `method` to `body`, a handler that never waits (no I/O but local reads, no lock
    /// held for long): it runs on the connection's event loop without a task of its own.
    public mutating func immediate<Request: Message, Response: Message>(
        _ method: String, _ body: @escaping @Sendable (Request, ContinuousClock.Instant?) throws -> Response
    ) {
        let handler: RPCImmediateHandler = { payload, deadline in try body(Self.decode(payload, method), deadline).serializedBytes() }
        immediateHandlers[method] = handler
        handlers[method] = { payload, deadline in try handler(payload, deadline) }
        requestTypes[method] = Request.self
    }

    /// The request message `method` is decoded as (nil: no such route).
    public func requestType(of method: String) -> (any Message.Type)? { requestTypes[method] }

    private static func decode<Request: Message>(_ payload: [UInt8], _ method: String) throws -> Request {
        do {
            return try Request(serializedBytes: payload)
        } catch {
            throw RPCError.invalidArgument("\(method): request is not a valid \(Request.protoMessageName): \(error)")
        }
    }

    public var methods: [String] { handlers.keys.sorted() }

    public func call(method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) async throws -> [UInt8] {
        guard let handler = handlers[method] else { throw unknownMethod(method) }
        return try await handler(payload, deadline)
    }

    /// The answer to a method with no route.
    public func unknownMethod(_ method: String) -> RPCError {
        RPCError(.unknownMethod, "unknown method '\(method)' (this server answers \(methods.joined(separator: ", ")))")
    }

    public func immediate(method: String) -> RPCImmediateHandler? { immediateHandlers[method] }

    public func admission(method: String) -> (any CallAdmission)? { admissions[method] }
}
