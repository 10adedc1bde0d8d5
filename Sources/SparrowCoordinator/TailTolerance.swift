import Foundation
import Synchronization

/// Recent latencies of one replica, as a histogram with 4 buckets per doubling from 16 µs,
/// halved every `decayEvery` samples so that it follows the replica as it changes. Pure.
public struct LatencyHistogram: Sendable {
    static let bucketCount = 96
    static let decayEvery = 512
    private var counts = [Double](repeating: 0, count: bucketCount)
    private var total: Double = 0
    private var sinceDecay = 0

    static func bucket(_ duration: Duration) -> Int {
        let micros = max(1, Double(duration.microseconds))
        return min(bucketCount - 1, max(0, Int((log2(micros) - 4) * 4)))
    }

    /// The upper bound of bucket `index`.
    static func upperBound(_ index: Int) -> Duration { .microseconds(Int64(pow(2, Double(index + 1) / 4 + 4).rounded(.up))) }

    public init() {}

    public mutating func record(_ duration: Duration) {
        counts[Self.bucket(duration)] += 1
        total += 1
        sinceDecay += 1
        if sinceDecay >= Self.decayEvery {
            sinceDecay = 0
            total /= 2
            for index in counts.indices { counts[index] /= 2 }
        }
    }

    public var samples: Double { total }

    /// The latency under which a fraction `q` of the recent calls answered (nil: too few samples).
    public func quantile(_ q: Double) -> Duration? {
        guard total >= 20 else { return nil }
        var seen = 0.0
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= q * total { return Self.upperBound(index) }
        }
        return Self.upperBound(Self.bucketCount - 1)
    }
}

/// Hedged shard calls: when a replica has not answered within its recent p95 (at least
/// `minimumDelay`), the call also goes to another replica and the first answer wins. Extra
/// calls are paid from a budget that earns `budgetRatio` of a call per first call (5%: at most
/// one extra call in twenty, over time) and holds at most `burst` (enough for every call in
/// flight to a replica that stalls at once); a replica that lost a race is passed over as first
/// choice for `slowFor`, so a stalled replica costs a few hedges, not one per query.
public final class TailTolerance: Sendable {
    public struct Settings: Sendable {
        public var minimumDelay: Duration = .milliseconds(2)
        public var budgetRatio: Double = 0.05
        public var burst: Double = 100
        public var slowFor: Duration = .milliseconds(500)

        public init() {}
    }

    private struct Replica {
        var latency = LatencyHistogram()
        var slowUntil: ContinuousClock.Instant?
    }

    private struct State {
        var replicas: [String: Replica] = [:]
        var tokens: Double
    }

    public let settings: Settings
    private let state: Mutex<State>

    public init(_ settings: Settings = .init()) {
        self.settings = settings
        state = Mutex(State(tokens: settings.burst))
    }

    /// How long to wait for `node` before hedging; also earns the budget for one first call.
    public func delay(for node: String) -> Duration {
        state.withLock { state in
            state.tokens = min(settings.burst, state.tokens + settings.budgetRatio)
            return max(settings.minimumDelay, state.replicas[node]?.latency.quantile(0.95) ?? settings.minimumDelay)
        }
    }

    /// Whether the budget allows one extra call now (and spends it).
    public func hedge() -> Bool {
        state.withLock { state in
            guard state.tokens >= 1 else { return false }
            state.tokens -= 1
            return true
        }
    }

    /// `node` lost a race against another replica: it is tried last for `slowFor`.
    public func lost(_ node: String, now: ContinuousClock.Instant = .now) {
        state.withLock { $0.replicas[node, default: Replica()].slowUntil = now + settings.slowFor }
    }

    public func record(_ node: String, _ latency: Duration) {
        state.withLock { $0.replicas[node, default: Replica()].latency.record(latency) }
    }

    /// Whether `node` lost a race within `slowFor`.
    public func isSlow(_ node: String, now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { $0.replicas[node]?.slowUntil.map { $0 > now } ?? false }
    }

    /// `replicas` with the ones recently found slow moved last (order otherwise kept).
    public func order(_ replicas: [String], now: ContinuousClock.Instant = .now) -> [String] {
        let slow = state.withLock { state in Set(replicas.filter { state.replicas[$0]?.slowUntil.map { $0 > now } ?? false }) }
        guard !slow.isEmpty else { return replicas }
        return replicas.filter { !slow.contains($0) } + replicas.filter { slow.contains($0) }
    }
}
