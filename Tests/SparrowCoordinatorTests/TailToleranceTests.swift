import SparrowCoordinator
import Testing

@Suite struct TailToleranceTests {
    @Test func theHistogramsP95FollowsTheLatencies() {
        var histogram = LatencyHistogram()
        #expect(histogram.quantile(0.95) == nil, "too few samples")
        for n in 0..<1000 { histogram.record(.microseconds(n % 100 < 97 ? 200 : 20_000)) }
        let p95 = histogram.quantile(0.95)!
        #expect(p95 >= .microseconds(200) && p95 < .microseconds(250), "\(p95)")
        #expect(histogram.quantile(0.99)! >= .milliseconds(20))
        // The replica gets slower: within a few hundred samples the quantile follows.
        for _ in 0..<2000 { histogram.record(.milliseconds(5)) }
        #expect(histogram.quantile(0.5)! >= .milliseconds(5))
    }

    @Test func hedgesArePaidFromABudgetOfOneInTwenty() {
        var settings = TailTolerance.Settings()
        settings.burst = 2
        let tail = TailTolerance(settings)
        var hedges = 0
        for _ in 0..<1000 {
            _ = tail.delay(for: "a")
            if tail.hedge() { hedges += 1 }
        }
        #expect(hedges <= 2 + 1000 / 20 && hedges >= 1000 / 20 - 1, "\(hedges)")
    }

    @Test func aReplicaThatLostARaceIsTriedLastForAWhile() {
        let tail = TailTolerance()
        let now = ContinuousClock.now
        #expect(tail.order(["a", "b", "c"], now: now) == ["a", "b", "c"])
        tail.lost("a", now: now)
        #expect(tail.order(["a", "b", "c"], now: now + .milliseconds(100)) == ["b", "c", "a"])
        #expect(tail.order(["a", "b", "c"], now: now + .seconds(1)) == ["a", "b", "c"])
    }

    @Test func theDelayIsTheReplicasP95AndNeverBelowTheMinimum() {
        let tail = TailTolerance()
        #expect(tail.delay(for: "a") == tail.settings.minimumDelay)
        for _ in 0..<100 { tail.record("a", .milliseconds(30)) }
        let delay = tail.delay(for: "a")
        #expect(delay >= .milliseconds(30) && delay < .milliseconds(40), "\(delay)")
    }
}
