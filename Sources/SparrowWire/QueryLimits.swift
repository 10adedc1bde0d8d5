/// The largest searches a server takes: beyond these a request is refused with
/// `INVALID_ARGUMENT` naming the field, before any work is done.
public enum QueryLimits {
    /// Hits one search may ask for.
    public static let maxK = 10_000
    /// Terms in one query vector (inference-free queries have tens).
    public static let maxTerms = 4096
    /// Bytes of a text query (it is tokenized before anything else happens).
    public static let maxTextBytes = 16 << 10
    /// Queries in one `BatchSearch` (the coordinator sends at most 64).
    public static let maxBatch = 1024

    public static func checkK(_ k: Int) throws {
        guard k > 0 && k <= maxK else { throw RPCError.invalidArgument("k must be between 1 and \(maxK), not \(k)") }
    }

    public static func checkTerms(_ count: Int, field: String) throws {
        guard count <= maxTerms else { throw RPCError.invalidArgument("\(field) has \(count) terms; at most \(maxTerms) are allowed") }
    }
}
