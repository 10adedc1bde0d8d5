import Foundation

/// Why a call to etcd failed.
public enum EtcdError: Error, CustomStringConvertible, Sendable {
    /// No endpoint answered (each with why): etcd is down, unreachable, or has lost its quorum.
    case unavailable(attempts: [String])
    /// etcd answered with an error (gRPC `code`, etcd's `message`).
    case refused(endpoint: String, code: Int, message: String)
    /// An answer that is not what the v3 gateway sends.
    case malformed(endpoint: String, path: String, reason: String)
    /// An endpoint or TLS file that cannot be used.
    case configuration(String)

    public var description: String {
        switch self {
        case .unavailable(let attempts):
            "etcd is unavailable (it may have lost its quorum): \(attempts.joined(separator: "; "))"
        case .refused(let endpoint, let code, let message):
            "etcd at \(endpoint) refused the call (gRPC code \(code)): \(message)"
        case .malformed(let endpoint, let path, let reason):
            "etcd at \(endpoint) answered \(path) with something unexpected: \(reason)"
        case .configuration(let reason):
            "etcd client: \(reason)"
        }
    }
}
