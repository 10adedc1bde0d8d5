import Metrics
import SparrowWire

/// One shard's part of a query: a replica answers, or the shard is reported missing with why.
extension Coordinator {
    /// Calls the shard's in-sync replicas, starting from a rotating one (replicas recently found
    /// slow last, those marked down or stale not at all). With two or more, a call not answered within the
    /// replica's recent p95 is hedged to the next one (see `TailTolerance`); a failed call moves
    /// on to the next one at once.
    func searchShard(_ shard: ClusterMap.ShardEntry, request: Sparrow_V1_SearchRequest, deadline: ContinuousClock.Instant, rotation: Int) async -> ShardOutcome {
        var request = request
        request.shard = shard.id
        var failure = SearchResult.ShardFailure(shard: shard.id, node: "", reason: "")
        let serving = shard.inSync
        let rotated = serving.indices.map { serving[($0 + rotation) % serving.count] }
        var candidates: [(node: String, client: RPCClient)] = []
        // With one replica there is nothing to order, hedge or keep latencies for.
        let hedging = rotated.count > 1
        for node in hedging ? tail.order(rotated) : rotated {
            failure.node = node
            guard let client = try? client(node) else {
                failure.reason = "node '\(node)' has no address in the cluster map"
                continue
            }
            if let reason = downReason(node) {
                failure.reason = "node marked down by health checks (\(reason))"
                continue
            }
            candidates.append((node, client))
        }
        if candidates.count > 1 { return await hedged(candidates, request: request, deadline: deadline) }
        if let only = candidates.first {
            switch await attempt(only.node, only.client, request: request, deadline: deadline, track: hedging) {
            case .answered(let result): return ShardOutcome(result: result)
            case .failed(let reason, let timedOut):
                failure.reason = reason
                return ShardOutcome(failure: failure, timedOut: timedOut)
            case .hedgeTimer: break
            }
        }
        return ShardOutcome(failure: failure)
    }

    enum Attempt: Sendable {
        case answered(ResultMerger.ShardResult)
        case failed(String, timedOut: Bool)
        case hedgeTimer
    }

    private static let hedges = Counter(label: "sparrow_coordinator_hedged_calls_total")

    /// The first answer of the candidates: the first is called at once, the next one when a
    /// call fails or, once, when the first has not answered within its hedge delay (ten times
    /// longer when the next one has just lost a race).
    private func hedged(_ candidates: [(node: String, client: RPCClient)], request: Sparrow_V1_SearchRequest, deadline: ContinuousClock.Instant) async -> ShardOutcome {
        await withTaskGroup(of: (Int, Attempt).self) { group in
            var failure = SearchResult.ShardFailure(shard: request.shard, node: "", reason: "")
            var timedOut = false
            var next = 1
            var pending = 1
            group.addTask { (0, await self.attempt(candidates[0].node, candidates[0].client, request: request, deadline: deadline)) }
            let delay = tail.delay(for: candidates[0].node)
            if delay < deadline - .now {
                group.addTask {
                    try? await Task.sleep(for: delay)
                    return (-1, .hedgeTimer)
                }
            }
            var hedgedTo: Int?
            var patient = false
            while let (index, outcome) = await group.next() {
                var launch = false
                switch outcome {
                case .answered(let result):
                    group.cancelAll()
                    // The race's loser is tried last for a while.
                    if let hedgedTo { tail.lost(candidates[index == 0 ? hedgedTo : 0].node) }
                    return ShardOutcome(result: result)
                case .failed(let reason, let expired):
                    pending -= 1
                    (failure.node, failure.reason, timedOut) = (candidates[index].node, reason, expired)
                    launch = next < candidates.count && deadline > .now
                case .hedgeTimer:
                    guard pending > 0, next < candidates.count, !Task.isCancelled else { break }
                    if !patient, tail.isSlow(candidates[next].node) {
                        // The other replica lost a race lately: a hedge to it would likely be
                        // wasted. Wait longer; a call still unanswered then is stuck, not slow.
                        patient = true
                        let longer = max(delay * 10, .milliseconds(20))
                        if longer < deadline - .now {
                            group.addTask {
                                try? await Task.sleep(for: longer)
                                return (-1, .hedgeTimer)
                            }
                        }
                    } else if tail.hedge() {
                        launch = true
                        hedgedTo = next
                        Self.hedges.increment()
                    }
                }
                if launch {
                    let (index, candidate) = (next, candidates[next])
                    next += 1
                    pending += 1
                    group.addTask { (index, await self.attempt(candidate.node, candidate.client, request: request, deadline: deadline)) }
                } else if pending == 0 {
                    break
                }
            }
            group.cancelAll()
            return ShardOutcome(failure: failure, timedOut: timedOut)
        }
    }

    /// One call to one replica, timed (and, with `track`, kept in its latency record for hedging).
    func attempt(
        _ node: String, _ client: RPCClient, request: Sparrow_V1_SearchRequest, deadline: ContinuousClock.Instant, track: Bool = true
    ) async -> Attempt {
        guard deadline > .now else { return .failed("deadline passed before an answer", timedOut: true) }
        let started = ContinuousClock.now
        do {
            let response = try await searches.search(request, node: node, client: client, deadline: deadline)
            let latency = ContinuousClock.now - started
            if track { tail.record(node, latency) }
            Self.timers("sparrow_coordinator_shard_duration_seconds", [("shard", request.shard)]).recordNanoseconds(latency.microseconds * 1000)
            return .answered(.init(shard: request.shard, response))
        } catch {
            let wire = RPCError(error)
            if !Task.isCancelled {
                Self.counters("sparrow_coordinator_shard_failures_total", [("shard", request.shard), ("node", node)]).increment()
                logger.debug("shard call failed", metadata: ["shard.id": "\(request.shard)", "node.id": "\(node)", "error": "\(wire)"])
            }
            return .failed(wire.description, timedOut: wire.code == .deadlineExceeded)
        }
    }
}
