import SparrowWire

/// Why the coordinator refused or failed a change, with a stable code (`code`, for logs and
/// clients that branch on it) and its wire form: a map that a change would break is the
/// caller's problem (`failed_precondition`), not the server's (`internal`).
public enum CoordinatorError: Error, Equatable, CustomStringConvertible, RPCErrorConvertible {
    /// The map a change would make is not valid: where it lives, and what is wrong.
    case invalidMap(location: String, reason: String)
    /// Another coordinator owns the map, reachable at `owner` when known.
    case notOwner(what: String, owner: String?)
    /// No coordinator can change the map from here now (etcd unreachable or without quorum).
    case mapUnavailable(what: String, reason: String)
    /// The store refused the save: this coordinator lost the map meanwhile, or the map changed
    /// under it since `revision`.
    case mapConflict(location: String, revision: Int64)

    /// The stable name of the case.
    public var code: String {
        switch self {
        case .invalidMap: "map_invalid"
        case .notOwner: "not_owner"
        case .mapUnavailable: "map_unavailable"
        case .mapConflict: "map_conflict"
        }
    }

    public var description: String {
        switch self {
        case let .invalidMap(location, reason):
            "the change would leave an invalid cluster map (\(location)): \(reason)"
        case let .notOwner(what, owner?):
            "this coordinator follows \(owner), which owns the cluster map: send \(what) there"
        case let .notOwner(what, nil):
            "\(what) refused: this coordinator does not own the cluster map, and no coordinator owns it now; retry shortly"
        case let .mapUnavailable(what, reason):
            "\(what) refused: the cluster map cannot be changed now (\(reason)); searches go on from the last map"
        case let .mapConflict(location, revision):
            "the map change was not saved: in \(location), this coordinator is no longer the owner, or the map changed since revision \(revision)"
        }
    }

    public var rpcError: RPCError {
        switch self {
        case .invalidMap, .mapConflict: RPCError(.failedPrecondition, description)
        case .notOwner(_, let owner): RPCError(owner == nil ? .unavailable : .failedPrecondition, description)
        case .mapUnavailable: RPCError(.unavailable, description)
        }
    }
}
