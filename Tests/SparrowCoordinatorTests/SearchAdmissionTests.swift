import SparrowCoordinator
import SparrowWire
import Testing

@Suite struct SearchAdmissionTests {
    /// Drives `limit` through `windows` windows of 100 ms in which every place is taken (the
    /// searches offered always exceed the limit) and a search takes `latency(limit)`; returns the
    /// limits seen at the end of each window.
    static func overload(_ limit: inout AdaptiveLimit, windows: Int, latency: (Int) -> Duration) -> [Int] {
        var now = ContinuousClock.now
        var seen: [Int] = []
        for _ in 0..<windows {
            limit.noteReached()
            for n in 0..<40 {
                let end = n == 39 ? now + .milliseconds(100) : now + .milliseconds(n * 2)
                limit.completed(latency(limit.limit), now: end)
            }
            now += .milliseconds(100)
            seen.append(limit.limit)
        }
        return seen
    }

    /// Two cores, 1 ms a search: past two at once, searches queue and take longer in proportion.
    static func twoCores(_ inFlight: Int) -> Duration { .microseconds(1000 * max(2, inFlight) / 2) }

    @Test func underOverloadTheLimitSettlesWhereLatencyStaysNearTheUnloadedOne() {
        var settings = AdaptiveLimit.Settings()
        settings.minimum = 1
        settings.initial = 64
        var limit = AdaptiveLimit(settings)
        // A first window with nothing queued sets the floor (1 ms).
        limit.completed(.milliseconds(1), now: .now)
        for _ in 0..<40 { limit.completed(.milliseconds(1), now: .now + .milliseconds(100)) }
        let limits = Self.overload(&limit, windows: 300, latency: Self.twoCores)
        // It came down from 64 within a second and a half, and then stays at 2–3 places: latency
        // at most 1.5 ms against 1 ms unloaded, with both cores busy.
        #expect(limits[15] <= 4, "\(limits.prefix(20))")
        let settled = limits.suffix(250)
        #expect(settled.allSatisfy { (2...4).contains($0) }, "\(Set(settled).sorted())")
        #expect(limit.floor! <= .microseconds(1200), "\(limit.floor!)")
    }

    @Test func theLimitGrowsOnlyWhileItIsReachedAndLatencyHolds() {
        var settings = AdaptiveLimit.Settings()
        settings.initial = 8
        var limit = AdaptiveLimit(settings)
        // Sixty-four cores: latency is flat up to 64 searches at once.
        let limits = Self.overload(&limit, windows: 200, latency: { .microseconds(1000 * max(64, $0) / 64) })
        #expect(limits[40] >= 48, "\(limits.prefix(50))")
        // It saws between the cores and the point where queueing costs 1.5× the latency (96), and a step past it.
        #expect(limits.suffix(100).allSatisfy { (48...110).contains($0) }, "\(Set(limits.suffix(100)).sorted())")

        // Nobody reaches it: it stays where it is.
        var idle = AdaptiveLimit(settings)
        var now = ContinuousClock.now
        for _ in 0..<2000 {
            now += .milliseconds(10)
            idle.completed(.milliseconds(1), now: now)
        }
        #expect(idle.limit == 8)
    }

    @Test func pastAFixedLimitSearchesAreRefusedAtOnce() throws {
        let admission = SearchAdmission(.fixed(3))
        let places = try (0..<3).map { _ in try admission.enter() }
        #expect(throws: RPCError.self) { try admission.enter() }
        do {
            _ = try admission.enter()
        } catch let error as RPCError {
            #expect(error.code == .resourceExhausted, "\(error)")
        }
        admission.leave(started: places[0])
        let again = try admission.enter()
        admission.leave(started: again)
        #expect(admission.limit == 3)
    }
}
