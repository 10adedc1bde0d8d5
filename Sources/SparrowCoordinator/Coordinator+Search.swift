import Foundation
import SparrowCore
import SparrowWire

/// The query path: a query checked and turned into a vector once, fanned out to one replica of
/// every shard under a deadline, merged exactly, with honest coverage.
extension Coordinator {
    /// The query vector for a request: its own vector, or its text encoded inference-free.
    public func queryVector(_ request: Sparrow_V1_QueryRequest) throws -> [String: Float] {
        if let vector = try Self.checkedVector(request) { return vector }
        guard let encoder else {
            throw RPCError.invalidArgument("this coordinator has no query encoder (cluster file: encoder.model); send a vector instead of text")
        }
        return encoder.tokenWeights(request.text)
    }

    /// A query checked against `QueryLimits`: its own vector (finite, non-negative weights), or
    /// nil when it is a non-empty text to encode.
    public static func checkedVector(_ request: Sparrow_V1_QueryRequest) throws -> [String: Float]? {
        try QueryLimits.checkTerms(request.vector.count, field: "vector")
        guard request.text.utf8.count <= QueryLimits.maxTextBytes else {
            throw RPCError.invalidArgument("text: \(request.text.utf8.count) bytes; at most \(QueryLimits.maxTextBytes) are allowed")
        }
        if !request.vector.isEmpty {
            let vector = request.vector.weights
            if let bad = vector.first(where: { !$0.value.isFinite || $0.value < 0 }) {
                throw RPCError.invalidArgument("vector: token '\(bad.key)' has weight \(bad.value); weights must be finite and non-negative")
            }
            return vector
        }
        guard !request.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw RPCError.invalidArgument("the query needs a non-empty text or vector")
        }
        return nil
    }

    /// The hits a query asks for (0: 10), checked against `QueryLimits`.
    public static func checkedK(_ request: Sparrow_V1_QueryRequest) throws -> Int {
        let k = request.k == 0 ? 10 : Int(request.k)
        try QueryLimits.checkK(k)
        return k
    }

    /// Searches every shard; partial results are returned and labelled in `coverage`. Refused
    /// at once (`RESOURCE_EXHAUSTED`) past the `admission` bound.
    public func search(_ request: Sparrow_V1_QueryRequest) async throws -> Sparrow_V1_QueryResponse {
        let started = try admission.enter()
        defer { admission.leave(started: started) }
        return try await admitted(request)
    }

    /// Searches every shard for a search that holds a place in `admission` (the protobuf
    /// route's server takes it before the call gets a task, so that a refusal costs no task).
    func admitted(_ request: Sparrow_V1_QueryRequest) async throws -> Sparrow_V1_QueryResponse {
        let started = ContinuousClock.now
        let k = try Self.checkedK(request)
        _ = try request.mode.checked(field: "mode")
        let query = [Sparrow_V1_TermWeight](try queryVector(request))
        let cluster = self.cluster
        let timeout = request.timeoutMs > 0 ? Duration.milliseconds(Int64(request.timeoutMs)) : defaultTimeout
        let deadline = started + timeout
        var shardRequest = Sparrow_V1_SearchRequest()
        shardRequest.k = UInt32(k)
        shardRequest.query = query
        shardRequest.filter = request.filter
        shardRequest.explain = request.explain
        shardRequest.build = cluster.build ?? ""
        shardRequest.mode = request.mode

        let first = rotation.add(1, ordering: .relaxed).oldValue
        let fanout = shardRequest
        // This task searches the first shard itself (a map lists at least one): a task fewer
        // per query, and none for a single shard.
        let outcomes = await withTaskGroup(of: ShardOutcome.self) { group in
            for (index, shard) in cluster.shards.enumerated().dropFirst() {
                group.addTask {
                    await self.searchShard(shard, request: fanout, deadline: deadline, rotation: first + index)
                }
            }
            var outcomes = [await searchShard(cluster.shards[0], request: fanout, deadline: deadline, rotation: first)]
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        var response = Sparrow_V1_QueryResponse()
        response.hits = ResultMerger.merge(outcomes.compactMap(\.result), k: k)
        response.coverage.shardsTotal = UInt32(cluster.shards.count)
        response.coverage.shardsOk = UInt32(outcomes.count { $0.result != nil })
        response.coverage.failed = outcomes.compactMap(\.failure).sorted { $0.shard < $1.shard }
        response.coverage.timedOut = outcomes.contains { $0.timedOut }
        response.query = query
        let answered = outcomes.compactMap(\.result)
        response.approximateShards = UInt32(answered.count { $0.response.mode.approximate })
        response.mode = response.approximateShards == 0 ? "exact" : Int(response.approximateShards) == answered.count ? "approximate" : "mixed"
        response.tookMs = (ContinuousClock.now - started).milliseconds
        if !response.coverage.failed.isEmpty {
            logger.warning("partial results", metadata: [
                "query.shards_ok": "\(response.coverage.shardsOk)", "query.shards_total": "\(response.coverage.shardsTotal)",
                "query.failed": "\(response.coverage.failed.map { "\($0.shard)@\($0.node): \($0.reason)" })",
            ])
        }
        return response
    }

    struct ShardOutcome: Sendable {
        var result: ResultMerger.ShardResult?
        var failure: Sparrow_V1_ShardFailure?
        var timedOut = false
    }
}
