import Metrics

/// Wraps a service with per-method metrics: `sparrow_rpc_requests_total{method, code}` and
/// `sparrow_rpc_request_duration_seconds{method}`.
public struct InstrumentedService: RPCService {
    let inner: any RPCService
    private static let counters = MetricHandles { Counter(label: $0, dimensions: $1) }
    private static let timers = MetricHandles { Timer(label: $0, dimensions: $1) }

    public init(_ inner: any RPCService) {
        self.inner = inner
    }

    public func call(method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) async throws -> [UInt8] {
        let started = ContinuousClock.now
        var code = Sparrow_V1_Status.Code.ok
        defer {
            Self.counters("sparrow_rpc_requests_total", [("method", method), ("code", code.name)]).increment()
            Self.timers("sparrow_rpc_request_duration_seconds", [("method", method)])
                .recordNanoseconds((ContinuousClock.now - started).microseconds * 1000)
        }
        do {
            return try await inner.call(method: method, payload: payload, deadline: deadline)
        } catch let error as RPCError {
            code = error.code
            throw error
        } catch {
            code = .internal
            throw error
        }
    }
}
