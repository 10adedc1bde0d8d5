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
        case .UNRECOGNIZED(let value): "code_\(value)"
        }
    }
}
