import Metrics

/// Wraps routes with per-method metrics: `sparrow_rpc_requests_total{method, code}` and
/// `sparrow_rpc_request_duration_seconds{method}`. A method the routes do not answer is counted
/// as `method="unknown"`: label values never come from a string a client chose, so invented
/// method names cannot grow the metrics.
public struct InstrumentedService: RPCService {
    let inner: RPCRoutes
    private let known: Set<String>
    static let unknownMethod = "unknown"
    private static let counters = MetricHandles { Counter(label: $0, dimensions: $1) }
    private static let timers = MetricHandles { Timer(label: $0, dimensions: $1) }

    public init(_ inner: RPCRoutes) {
        self.inner = inner
        known = Set(inner.methods)
    }

    public func call(method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) async throws -> [UInt8] {
        let started = ContinuousClock.now
        let outcome: Result<[UInt8], any Error>
        do {
            outcome = .success(try await inner.call(method: method, payload: payload, deadline: deadline))
        } catch {
            outcome = .failure(error)
        }
        return try Self.recorded(outcome, label(method), since: started)
    }

    /// The metric label of `method`: itself when the routes answer it, else "unknown".
    public func label(_ method: String) -> String { known.contains(method) ? method : Self.unknownMethod }

    public func immediate(method: String) -> RPCImmediateHandler? {
        guard let handler = inner.immediate(method: method) else { return nil }
        return { payload, deadline in
            let started = ContinuousClock.now
            return try Self.recorded(Result { try handler(payload, deadline) }, method, since: started)
        }
    }

    public func admission(method: String) -> (any CallAdmission)? { inner.admission(method: method) }

    /// Counts and times one call of `method`, then hands its outcome on.
    private static func recorded(_ outcome: Result<[UInt8], any Error>, _ method: String, since started: ContinuousClock.Instant) throws -> [UInt8] {
        var code = Sparrow_V1_Status.Code.ok
        if case .failure(let error) = outcome { code = RPCError(error).code }
        counters("sparrow_rpc_requests_total", [("method", method), ("code", code.name)]).increment()
        timers("sparrow_rpc_request_duration_seconds", [("method", method)])
            .recordNanoseconds((ContinuousClock.now - started).microseconds * 1000)
        return try outcome.get()
    }
}
