import Metrics
import SparrowWire
import Synchronization

/// How many searches may run at once, adapted to their latency (TCP Vegas' idea, as in Envoy's
/// adaptive concurrency and Netflix's concurrency limits). Time is cut into windows; at the end
/// of each, its p90 is compared with the floor, a low quantile of the last `memory` windows'
/// p90s (what searches take when nothing queues):
/// - above `tolerance` × the floor, work is queueing somewhere: the limit shrinks by a fifth;
/// - else, if the limit was reached during the window, it grows by an eighth (at least 1).
/// So under overload the searches let in keep close to the unloaded latency and the rest are
/// refused at once, and a limit that nobody reaches does not grow. Pure.
public struct AdaptiveLimit: Sendable {
    public struct Settings: Sendable, Equatable {
        public var minimum = 2
        public var maximum = 1024
        public var initial = 16
        public var tolerance = 1.5
        public var window: Duration = .milliseconds(100)
        /// Windows whose p90 make the floor (3,000 × 100 ms: the last 5 minutes, longer than
        /// most overloads, so that the floor stays what searches took before one).
        public var memory = 3000

        public init() {}
    }

    public let settings: Settings
    public private(set) var limit: Int
    private var current = LatencyHistogram()
    private var started: ContinuousClock.Instant
    private var reached = false
    /// The p90 of the last `memory` windows, oldest first.
    private var recent: [Duration] = []

    public init(_ settings: Settings = .init(), now: ContinuousClock.Instant = .now) {
        self.settings = settings
        limit = min(max(settings.initial, settings.minimum), settings.maximum)
        started = now
    }

    /// What searches take when nothing queues: the 5th percentile of the recent windows' p90
    /// (a low quantile, not the minimum, so one lucky window does not set it); nil before the first window.
    public var floor: Duration? {
        guard !recent.isEmpty else { return nil }
        return recent.sorted()[recent.count / 20]
    }

    /// Notes that a search found the limit reached (it was refused, or took the last place).
    public mutating func noteReached() { reached = true }

    /// A search done in `latency`; may end the window and move the limit. True when the limit changed.
    @discardableResult
    public mutating func completed(_ latency: Duration, now: ContinuousClock.Instant) -> Bool {
        current.record(latency)
        guard now - started >= settings.window, let p90 = current.quantile(0.9) else { return false }
        let before = limit
        if let floor, p90 > floor * settings.tolerance {
            limit = max(settings.minimum, limit * 4 / 5)
        } else if reached {
            limit = min(settings.maximum, limit + max(1, limit / 8))
        }
        recent.append(p90)
        if recent.count > settings.memory { recent.removeFirst(recent.count - settings.memory) }
        current = LatencyHistogram()
        reached = false
        started = now
        return limit != before
    }
}

/// The coordinator's bound on searches in progress: fixed, or adaptive (`AdaptiveLimit`).
/// Past it a search is refused at once with `RESOURCE_EXHAUSTED` (HTTP 429 with `Retry-After`),
/// never queued into its deadline. Shown as `sparrow_coordinator_search_limit` and
/// `sparrow_coordinator_searches_refused_total`.
public final class SearchAdmission: CallAdmission {
    public enum Mode: Sendable, Equatable {
        case fixed(Int)
        case adaptive(AdaptiveLimit.Settings)
    }

    private struct State {
        var adaptive: AdaptiveLimit?
        var fixed: Int
        var inProgress = 0
        var limit: Int { adaptive?.limit ?? fixed }
    }

    private let state: Mutex<State>
    private let limitGauge = Gauge(label: "sparrow_coordinator_search_limit")
    private let refusals = Counter(label: "sparrow_coordinator_searches_refused_total")

    public init(_ mode: Mode) {
        switch mode {
        case .fixed(let limit): state = Mutex(State(adaptive: nil, fixed: limit))
        case .adaptive(let settings): state = Mutex(State(adaptive: AdaptiveLimit(settings), fixed: 0))
        }
        limitGauge.record(Double(limit))
    }

    /// The searches that may run at once now.
    public var limit: Int { state.withLock { $0.limit } }

    /// Takes a place, or throws the refusal; give it back with `leave(started:)`.
    public func enter() throws -> ContinuousClock.Instant {
        let refusedAt: (inProgress: Int, limit: Int)? = state.withLock { state in
            guard state.inProgress < state.limit else {
                state.adaptive?.noteReached()
                return (state.inProgress, state.limit)
            }
            state.inProgress += 1
            if state.inProgress == state.limit { state.adaptive?.noteReached() }
            return nil
        }
        if let refusedAt {
            refusals.increment()
            throw RPCError(
                .resourceExhausted,
                "the coordinator has \(refusedAt.inProgress) searches in progress, its limit now (it follows their latency): retry after a second")
        }
        return .now
    }

    /// Gives back the place taken by `enter` at `started`; its latency moves an adaptive limit.
    public func leave(started: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        let changed: Int? = state.withLock { state in
            state.inProgress -= 1
            return state.adaptive?.completed(now - started, now: now) == true ? state.limit : nil
        }
        if let changed { limitGauge.record(Double(changed)) }
    }
}
