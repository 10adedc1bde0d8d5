import Foundation
import Hummingbird
import Logging
import NIOCore
import SparrowCore
import SparrowSecurity
import SparrowWire

/// The coordinator's HTTP/JSON API:
///
///     POST /v1/search  {"query": "text"} or {"vector": {"token": w}}, "k"?, "explain"?,
///                      "filter"? {"field": "value"}, "timeout_ms"?,
///                      "mode"? "exact" (default) | "approximate" with "recall" (a target the shards
///                      calibrated for) or "threshold" and "heap_factor" (explicit settings),
///                      "fields"? true: each hit's stored fields too (k at most 100)
///                      → {"hits": [{"rank", "id", "shard", "score", "explanation"?, "fields"?}],
///                         "coverage": {"shards_total", "shards_ok", "failed": [{"shard", "node", "reason"}],
///                                      "timed_out"}, "query": {"token": w}, "took_ms",
///                         "mode": "exact" | "approximate" | "mixed", "approximate_shards"}
///     GET  /v1/cluster → {"epoch", "build"?, "owner"?, "nodes": [{"node", "address", "state", "reason"?}],
///                         "shards": [{"shard", "replicas": [{"node", "address", "stale"?}]}],
///                         "moves": [{"id", "shard", "from"?, "to", "phase", "copied_bytes"?, "total_bytes"?}],
///                         "orphans": [{"shard", "node", "seen_seconds", "drop_in_seconds"}]}
///     GET  /healthz    → {"status": "ok"|"degraded", "nodes": {"node-1": "ok" | reason}, "map": {"role":
///                        "owner"|"follower"|"unavailable", "owner"?, "reason"?}}, as the last health checks
///                        found the nodes (it calls no node), and this coordinator's part in the map
///     GET  /metrics    → Prometheus text
///     GET  /           → the web console (`Console`)
/// Errors: HTTP 400/401/403/404/429/500 with {"error": {"code", "message"}}. With `keys`, every
/// route but /healthz needs an API key of scope read (`APIKeyMiddleware`).
public enum HTTPAPI {
    struct SearchBody: Decodable {
        var query: String?
        var vector: [String: Float]?
        var k: UInt32?
        var explain: Bool?
        var filter: [String: String]?
        var timeout_ms: UInt32?
        var mode: String?
        var recall: Double?
        var threshold: Double?
        var heap_factor: Double?
        var fields: Bool?
    }

    struct SearchReply: Encodable {
        struct HitJSON: Encodable {
            var rank: Int
            var id: String
            var shard: String
            var score: Float
            var explanation: [ContributionJSON]?
            var fields: [String: String]?
        }

        struct ContributionJSON: Encodable {
            var token: String
            var query_weight: Float
            var document_weight: Float
        }

        struct CoverageJSON: Encodable {
            var shards_total: UInt32
            var shards_ok: UInt32
            var failed: [FailureJSON]
            var timed_out: Bool
        }

        struct FailureJSON: Encodable {
            var shard: String
            var node: String
            var reason: String
        }

        var hits: [HitJSON]
        var coverage: CoverageJSON
        var query: [String: Float]
        var took_ms: Double
        var mode: String
        var approximate_shards: UInt32
    }

    /// The router; `metricsText` renders the process's metrics in Prometheus text format.
    /// `gate` bounds the searches in progress (shared with the protobuf port): past it a search
    /// gets 429 with `Retry-After` at once.
    public static func router(
        coordinator: Coordinator, keys: APIKeyVerifier? = nil, gate: WorkGate? = nil, metricsText: @escaping @Sendable () -> String
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(MetricsMiddleware())
        if let keys { router.middlewares.add(APIKeyMiddleware(keys: keys)) }
        router.post("/v1/search") { request, context -> Response in
            if let gate {
                guard gate.tryEnter() else { return errorResponse(gate.refusal) }
            }
            defer { gate?.leave() }
            do {
                let body = try searchBody(try await request.body.collect(upTo: 4 << 20))
                let query = try Self.query(body)
                let result = try await coordinator.search(query)
                var reply = searchReply(result, explain: query.explain)
                if body.fields == true {
                    let fields = await coordinator.storedFields(of: result.hits, within: query.timeout ?? .seconds(1))
                    for index in reply.hits.indices { reply.hits[index].fields = fields[index] ?? [:] }
                }
                return try json(reply)
            } catch let error as RPCError {
                return errorResponse(error)
            }
        }
        router.get("/v1/cluster") { _, _ -> Response in
            let view = coordinator.clusterView
            struct ReplicaJSON: Encodable { var node: String; var address: String; var stale: Bool? }
            struct ShardJSON: Encodable { var shard: String; var replicas: [ReplicaJSON] }
            struct NodeJSON: Encodable { var node: String; var address: String; var state: String; var reason: String? }
            struct MoveJSON: Encodable {
                var id: String; var shard: String; var from: String?; var to: String; var phase: String; var copied_bytes: UInt64?; var total_bytes: UInt64?
            }
            struct OrphanJSON: Encodable { var shard: String; var node: String; var seen_seconds: UInt32; var drop_in_seconds: UInt32 }
            struct ClusterJSON: Encodable {
                var epoch: UInt64; var build: String?; var owner: String?; var nodes: [NodeJSON]; var shards: [ShardJSON]; var moves: [MoveJSON]
                var orphans: [OrphanJSON]
            }
            return try json(ClusterJSON(
                epoch: view.epoch, build: view.build, owner: view.owner,
                nodes: view.nodes.map { NodeJSON(node: $0.id, address: $0.address, state: $0.state, reason: $0.reason) },
                shards: view.shards.map { shard in
                    ShardJSON(shard: shard.id, replicas: shard.replicas.map { ReplicaJSON(node: $0.node, address: $0.address, stale: $0.stale ? true : nil) })
                },
                moves: view.moves.map {
                    MoveJSON(id: $0.move.id, shard: $0.move.shard, from: $0.move.from, to: $0.move.to, phase: $0.move.phase.rawValue,
                             copied_bytes: $0.copy?.copiedBytes, total_bytes: $0.copy?.totalBytes)
                },
                orphans: view.orphans.map { OrphanJSON(shard: $0.shard, node: $0.node, seen_seconds: $0.seenSeconds, drop_in_seconds: $0.dropInSeconds) }))
        }
        router.get("/") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: Console.html)))
        }
        router.get("/healthz") { _, _ -> Response in
            let nodes = coordinator.nodeStates
            struct MapJSON: Encodable { var role: String; var owner: String?; var reason: String? }
            struct HealthJSON: Encodable { var status: String; var nodes: [String: String]; var map: MapJSON }
            let healthy = nodes.values.allSatisfy { $0 == nil }
            let map: MapJSON = switch coordinator.store.ownership {
            case .owner: MapJSON(role: "owner")
            case .follower(let owner): MapJSON(role: "follower", owner: owner)
            case .unavailable(let reason): MapJSON(role: "unavailable", reason: reason)
            }
            return try json(HealthJSON(status: healthy ? "ok" : "degraded", nodes: nodes.mapValues { $0 ?? "ok" }, map: map))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: metricsText())))
        }
        return router
    }

    /// The query a `POST /v1/search` body asks for, or `invalidArgument` naming the field that
    /// is wrong.
    public static func decodeSearch(_ body: ByteBuffer) throws -> SearchQuery {
        try query(try searchBody(body))
    }

    static func searchBody(_ body: ByteBuffer) throws -> SearchBody {
        do {
            return try JSONDecoder().decode(SearchBody.self, from: Data(buffer: body))
        } catch {
            throw RPCError.invalidArgument("request body is not a valid search: \(ClusterMap.describeJSON(error))")
        }
    }

    static func query(_ body: SearchBody) throws -> SearchQuery {
        let mode: SearchMode
        switch body.mode ?? "exact" {
        case "exact":
            guard body.recall == nil, body.threshold == nil, body.heap_factor == nil else {
                throw RPCError.invalidArgument("recall, threshold and heap_factor need \"mode\": \"approximate\"")
            }
            mode = .exact
        case "approximate":
            switch (body.recall, body.threshold, body.heap_factor) {
            case (let recall?, nil, nil): mode = .recall(recall)
            case (nil, let threshold?, let heapFactor?): mode = .settings(.init(threshold: threshold, heapFactor: heapFactor))
            default:
                throw RPCError.invalidArgument("\"mode\": \"approximate\" takes either \"recall\" or both \"threshold\" and \"heap_factor\"")
            }
        case let other:
            throw RPCError.invalidArgument("mode: \"\(other)\"; use \"exact\" or \"approximate\"")
        }
        if let text = body.query { try SearchQuery.checkText(text) }
        if body.fields == true, let k = body.k, k > Coordinator.maxHitsWithFields {
            throw RPCError.invalidArgument("\"fields\": true takes k of at most \(Coordinator.maxHitsWithFields), not \(k)")
        }
        let vector = body.vector ?? [:]
        return try SearchQuery(
            vector.isEmpty ? .text(body.query ?? "") : .vector(vector), k: Int(body.k ?? 10), filter: body.filter ?? [:],
            explain: body.explain ?? false, mode: mode, timeout: body.timeout_ms.flatMap { $0 > 0 ? .milliseconds(Int64($0)) : nil })
    }

    static func searchReply(_ result: SearchResult, explain: Bool) -> SearchReply {
        SearchReply(
            hits: result.hits.enumerated().map { rank, ranked in
                SearchReply.HitJSON(
                    rank: rank + 1, id: ranked.hit.id, shard: ranked.shard, score: ranked.hit.score,
                    explanation: explain ? (ranked.hit.explanation ?? []).map { .init(token: $0.token, query_weight: $0.queryWeight, document_weight: $0.documentWeight) } : nil)
            },
            coverage: .init(
                shards_total: UInt32(result.shardsTotal), shards_ok: UInt32(result.shardsOk),
                failed: result.failed.map { .init(shard: $0.shard, node: $0.node, reason: $0.reason) },
                timed_out: result.timedOut),
            query: result.vector, took_ms: result.took.milliseconds, mode: result.mode, approximate_shards: UInt32(result.approximateShards))
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func errorResponse(_ error: RPCError) -> Response {
        struct ErrorJSON: Encodable {
            struct Detail: Encodable { var code: String; var message: String }
            var error: Detail
        }
        let status: HTTPResponse.Status = switch error.code {
        case .invalidArgument, .unknownMethod: .badRequest
        case .unauthenticated: .unauthorized
        case .permissionDenied: .forbidden
        case .notFound: .notFound
        case .failedPrecondition, .staleEpoch: .conflict
        case .resourceExhausted: .tooManyRequests
        case .deadlineExceeded: .gatewayTimeout
        case .unavailable: .serviceUnavailable
        default: .internalServerError
        }
        var response = (try? json(ErrorJSON(error: .init(code: error.code.name, message: error.message)), status: status))
            ?? Response(status: .internalServerError)
        if status == .tooManyRequests { response.headers[.retryAfter] = "1" }
        return response
    }
}

extension ClusterMap {
    /// A JSON decoding error as "field 'x.y': what was wrong".
    static func describeJSON(_ error: any Error) -> String {
        (error as? DecodingError).map(describe) ?? "\(error)"
    }
}
