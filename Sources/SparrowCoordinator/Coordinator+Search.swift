import Foundation
import SparrowCore
import SparrowWire

/// The query path: a query checked and turned into a vector once, fanned out to one replica of
/// every shard under a deadline, merged exactly, with honest coverage.
extension Coordinator {
    /// The query vector: the caller's own, or its text encoded inference-free.
    public func vector(of query: SearchQuery) throws -> [String: Float] {
        switch query.input {
        case .vector(let vector): return vector
        case .text(let text):
            guard let encoder else {
                throw RPCError.invalidArgument("this coordinator has no query encoder (cluster file: encoder.model); send a vector instead of text")
            }
            return encoder.tokenWeights(text)
        }
    }

    /// Searches every shard; partial results are returned and labelled in `coverage`. Refused
    /// at once (`RESOURCE_EXHAUSTED`) past the `admission` bound.
    public func search(_ query: SearchQuery) async throws -> SearchResult {
        let started = try admission.enter()
        defer { admission.leave(started: started) }
        return try await admitted(query)
    }

    /// Searches every shard for a search that holds a place in `admission` (the protobuf
    /// route's server takes it before the call gets a task, so that a refusal costs no task).
    func admitted(_ query: SearchQuery) async throws -> SearchResult {
        let started = ContinuousClock.now
        let vector = try self.vector(of: query)
        let cluster = self.cluster
        let deadline = started + (query.timeout ?? defaultTimeout)
        let request = Sparrow_V1_SearchRequest(query, vector: vector, build: cluster.build)
        let first = rotation.add(1, ordering: .relaxed).oldValue
        // This task searches the first shard itself (a map lists at least one): a task fewer
        // per query, and none for a single shard.
        let outcomes = await withTaskGroup(of: ShardOutcome.self) { group in
            for (index, shard) in cluster.shards.enumerated().dropFirst() {
                group.addTask {
                    await self.searchShard(shard, request: request, deadline: deadline, rotation: first + index)
                }
            }
            var outcomes = [await searchShard(cluster.shards[0], request: request, deadline: deadline, rotation: first)]
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let answered = outcomes.compactMap(\.result)
        let result = SearchResult(
            hits: ResultMerger.merge(answered, k: query.k), vector: vector,
            shardsTotal: cluster.shards.count, shardsOk: answered.count,
            failed: outcomes.compactMap(\.failure).sorted { $0.shard < $1.shard }, timedOut: outcomes.contains { $0.timedOut },
            approximateShards: answered.count { $0.approximate }, took: ContinuousClock.now - started)
        if !result.failed.isEmpty {
            logger.warning("partial results", metadata: [
                "query.shards_ok": "\(result.shardsOk)", "query.shards_total": "\(result.shardsTotal)",
                "query.failed": "\(result.failed.map { "\($0.shard)@\($0.node): \($0.reason)" })",
            ])
        }
        return result
    }

    struct ShardOutcome: Sendable {
        var result: ResultMerger.ShardResult?
        var failure: SearchResult.ShardFailure?
        var timedOut = false
    }
}
