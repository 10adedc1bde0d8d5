import SwiftProtobuf

/// What a server answers: one call at a time, any number concurrently.
public protocol RPCService: Sendable {
    /// Answers `method` with a serialized response; throws `RPCError` for a failed call.
    /// `deadline` is when the caller stops waiting (nil: no deadline).
    func call(method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) async throws -> [UInt8]
}

/// An `RPCService` made of typed handlers, one per method name.
public struct RPCRoutes: RPCService {
    public typealias Handler = @Sendable ([UInt8], ContinuousClock.Instant?) async throws -> [UInt8]
    private var handlers: [String: Handler] = [:]

    public init() {}

    /// Routes `method` to `body`, decoding its request and encoding its response.
    public mutating func on<Request: Message, Response: Message>(
        _ method: String, _ body: @escaping @Sendable (Request, ContinuousClock.Instant?) async throws -> Response
    ) {
        handlers[method] = { payload, deadline in
            let request: Request
            do {
                request = try Request(serializedBytes: payload)
            } catch {
                throw RPCError.invalidArgument("\(method): request is not a valid \(Request.protoMessageName): \(error)")
            }
            return try await body(request, deadline).serializedBytes()
        }
    }

    public var methods: [String] { handlers.keys.sorted() }

    public func call(method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) async throws -> [UInt8] {
        guard let handler = handlers[method] else {
            throw RPCError(.unknownMethod, "unknown method '\(method)' (this server answers \(methods.joined(separator: ", ")))")
        }
        return try await handler(payload, deadline)
    }
}
