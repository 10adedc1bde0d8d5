/// A call that failed: a stable status code and a message for the user. Travels in the
/// response envelope's `status`.
public struct RPCError: Error, Equatable, CustomStringConvertible {
    public var code: Sparrow_V1_Status.Code
    public var message: String

    public init(_ code: Sparrow_V1_Status.Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }

    public var status: Sparrow_V1_Status {
        var status = Sparrow_V1_Status()
        status.code = code
        status.message = message
        return status
    }

    public static func invalidArgument(_ message: String) -> RPCError { RPCError(.invalidArgument, message) }
    public static func notFound(_ message: String) -> RPCError { RPCError(.notFound, message) }
    public static func unavailable(_ message: String) -> RPCError { RPCError(.unavailable, message) }
    public static func deadlineExceeded(_ message: String) -> RPCError { RPCError(.deadlineExceeded, message) }
    public static func failedPrecondition(_ message: String) -> RPCError { RPCError(.failedPrecondition, message) }

    /// Text a peer chose (a method name, an id), cut to `limit` characters for messages and logs.
    public static func printable(_ text: String, limit: Int = 128) -> String {
        text.count <= limit ? "'\(text)'" : "'\(text.prefix(limit))…' (\(text.utf8.count) bytes)"
    }

    /// Longest message a response carries: an answer never outgrows the smallest frame limit.
    public static let messageLimit = 4096

    /// This error with its message cut to `messageLimit` bytes.
    public var bounded: RPCError {
        guard message.utf8.count > Self.messageLimit else { return self }
        var cut = Substring(message)
        while cut.utf8.count > Self.messageLimit - 40 { cut = cut.dropLast(max(1, (cut.utf8.count - Self.messageLimit) / 2 + 1)) }
        return RPCError(code, "\(cut)… (message cut from \(message.utf8.count) bytes)")
    }
}

extension Sparrow_V1_Status.Code {
    /// The stable lower-case name used in logs, JSON and metrics.
    public var name: String {
        switch self {
        case .ok: "ok"
        case .invalidArgument: "invalid_argument"
        case .notFound: "not_found"
        case .deadlineExceeded: "deadline_exceeded"
        case .unavailable: "unavailable"
        case .internal: "internal"
        case .unknownMethod: "unknown_method"
        case .staleEpoch: "stale_epoch"
        case .cancelled: "cancelled"
        case .failedPrecondition: "failed_precondition"
        case .unauthenticated: "unauthenticated"
        case .permissionDenied: "permission_denied"
        case .resourceExhausted: "resource_exhausted"
        case .UNRECOGNIZED(let value): "code_\(value)"
        }
    }
}
