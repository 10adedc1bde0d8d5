import SparrowCore
import SparrowWire

// The search's values on the wire: a query from a client's `QueryRequest`, the call to a shard
// and its answer, and the result as a `QueryResponse`. Nothing between the edges is protobuf.

extension SearchQuery {
    /// The query a protobuf `QueryRequest` asks for: its vector when it has one, else its text
    /// (k 0: 10; timeout 0: the coordinator's default).
    public init(_ request: Sparrow_V1_QueryRequest) throws {
        try QueryLimits.checkTerms(request.vector.count, field: "vector")
        try Self.checkText(request.text)
        try self.init(
            request.vector.isEmpty ? .text(request.text) : .vector(request.vector.weights),
            k: request.k == 0 ? 10 : Int(request.k), filter: request.filter.values, explain: request.explain,
            mode: try request.mode.checked(field: "mode"),
            timeout: request.timeoutMs > 0 ? .milliseconds(Int64(request.timeoutMs)) : nil)
    }
}

extension Sparrow_V1_SearchRequest {
    /// The call each shard gets for `query` (its `shard` set per shard), searching `vector`.
    init(_ query: SearchQuery, vector: [String: Float], build: String?) {
        self.init()
        k = UInt32(query.k)
        self.query = vector.map { token, weight in
            var term = Sparrow_V1_TermWeight()
            term.token = token
            term.weight = weight
            return term
        }
        filter = .init(query.filter)
        explain = query.explain
        self.build = build ?? ""
        mode = .init(query.mode)
    }
}

extension ResultMerger.ShardResult {
    /// A shard's answer from the wire.
    init(shard: String, _ response: Sparrow_V1_SearchResponse) {
        self.init(shard: shard, hits: response.hits.map(Hit.init), scale: response.scale, approximate: response.mode.approximate)
    }
}

extension Sparrow_V1_QueryResponse {
    public init(_ result: SearchResult) {
        self.init()
        hits = result.hits.map { Sparrow_V1_Hit($0.hit, shard: $0.shard) }
        coverage.shardsTotal = UInt32(result.shardsTotal)
        coverage.shardsOk = UInt32(result.shardsOk)
        coverage.failed = result.failed.map { failure in
            var wire = Sparrow_V1_ShardFailure()
            wire.shard = failure.shard
            wire.node = failure.node
            wire.reason = failure.reason
            return wire
        }
        coverage.timedOut = result.timedOut
        query = .init(result.vector)
        tookMs = result.took.milliseconds
        mode = result.mode
        approximateShards = UInt32(result.approximateShards)
    }
}
