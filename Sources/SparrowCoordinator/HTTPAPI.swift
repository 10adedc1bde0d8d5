import Foundation
import Hummingbird
import Logging
import NIOCore
import OpenAPIHummingbird
import OpenAPIRuntime
import SparrowCore
import SparrowSecurity
import SparrowWire
import Yams

/// The coordinator's HTTP/JSON API, spec first: `openapi.yaml` (in this folder) describes every
/// route, and swift-openapi-generator makes the server's protocol and types from it at build time:
/// `POST /v1/search`, `GET /v1/cluster`, `GET /healthz`, `GET /metrics`, the web console at `/`,
/// and the document itself at `GET /v1/openapi.json`. Errors are `{"error": {"code", "message"}}`.
/// With `keys`, every route but /healthz, / and /v1/openapi.json needs an API key of scope read
/// (`APIKeyMiddleware`).
public enum HTTPAPI {
    /// The largest request body (a search's is far smaller); past it, 413 before any decoding.
    public static let bodyLimit = 4 << 20

    /// The router: API keys and metrics around the generated server of `openapi.yaml`
    /// (`HTTPHandler`). `metricsText` renders the process's metrics in Prometheus text format.
    /// `gate` bounds the searches in progress (shared with the protobuf port): past it a search
    /// gets 429 with `Retry-After` at once.
    public static func router(
        coordinator: Coordinator, keys: APIKeyVerifier? = nil, gate: WorkGate? = nil, metricsText: @escaping @Sendable () -> String
    ) throws -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(MetricsMiddleware())
        router.middlewares.add(BodyLimitMiddleware())
        if let keys { router.middlewares.add(APIKeyMiddleware(keys: keys)) }
        let handler = HTTPHandler(coordinator: coordinator, gate: gate, metricsText: metricsText)
        try handler.registerHandlers(on: router, middlewares: [HTTPErrorMiddleware()])
        return router
    }

    /// The OpenAPI document the server is generated from (built in from `openapi.yaml`), as JSON.
    static let document = Result { try YAMLDecoder().decode(OpenAPIObjectContainer.self, from: OpenAPIDocument.yaml) }

    /// The document as `/v1/openapi.json` serves it.
    public static func documentJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(try document.get())
    }

    /// The query a `POST /v1/search` body asks for, or `invalidArgument` naming the field that
    /// is wrong.
    public static func decodeSearch(_ body: ByteBuffer) throws -> SearchQuery {
        let request: Components.Schemas.SearchRequest
        do {
            request = try JSONDecoder().decode(Components.Schemas.SearchRequest.self, from: Data(buffer: body))
        } catch {
            throw invalidBody(error)
        }
        return try query(request)
    }

    /// A body that does not decode as its schema, named.
    static func invalidBody(_ error: any Error) -> RPCError {
        RPCError.invalidArgument("request body is not a valid search: \(ClusterMap.describeJSON(error))")
    }

    static func query(_ body: Components.Schemas.SearchRequest) throws -> SearchQuery {
        let mode: SearchMode
        switch body.mode ?? .exact {
        case .exact:
            guard body.recall == nil, body.threshold == nil, body.heapFactor == nil else {
                throw RPCError.invalidArgument("recall, threshold and heap_factor need \"mode\": \"approximate\"")
            }
            mode = .exact
        case .approximate:
            switch (body.recall, body.threshold, body.heapFactor) {
            case (let recall?, nil, nil): mode = .recall(recall)
            case (nil, let threshold?, let heapFactor?): mode = .settings(.init(threshold: threshold, heapFactor: heapFactor))
            default:
                throw RPCError.invalidArgument("\"mode\": \"approximate\" takes either \"recall\" or both \"threshold\" and \"heap_factor\"")
            }
        }
        if let text = body.query { try SearchQuery.checkText(text) }
        let k = body.k ?? 10
        if body.fields == true, k > Coordinator.maxHitsWithFields {
            throw RPCError.invalidArgument("\"fields\": true takes k of at most \(Coordinator.maxHitsWithFields), not \(k)")
        }
        guard (0...Int(UInt32.max)).contains(body.timeoutMs ?? 0) else {
            throw RPCError.invalidArgument("timeout_ms: \(body.timeoutMs ?? 0); give milliseconds from 0 (the default) to \(UInt32.max)")
        }
        let vector = body.vector?.additionalProperties ?? [:]
        return try SearchQuery(
            vector.isEmpty ? .text(body.query ?? "") : .vector(vector), k: k, filter: body.filter?.additionalProperties ?? [:],
            explain: body.explain ?? false, mode: mode, timeout: body.timeoutMs.flatMap { $0 > 0 ? .milliseconds(Int64($0)) : nil })
    }

    static func searchReply(_ result: SearchResult, explain: Bool) -> Components.Schemas.SearchResponse {
        .init(
            hits: result.hits.enumerated().map { rank, ranked in
                .init(
                    rank: rank + 1, id: ranked.hit.id, shard: ranked.shard, score: ranked.hit.score,
                    explanation: explain
                        ? (ranked.hit.explanation ?? []).map { .init(token: $0.token, queryWeight: $0.queryWeight, documentWeight: $0.documentWeight) } : nil)
            },
            coverage: .init(
                shardsTotal: result.shardsTotal, shardsOk: result.shardsOk,
                failed: result.failed.map { .init(shard: $0.shard, node: $0.node, reason: $0.reason) },
                timedOut: result.timedOut),
            query: .init(additionalProperties: result.vector), tookMs: result.took.milliseconds,
            mode: .init(rawValue: result.mode) ?? .mixed, approximateShards: result.approximateShards)
    }

    /// The HTTP status of an error code.
    static func status(of code: Sparrow_V1_Status.Code) -> HTTPResponse.Status {
        switch code {
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
    }

    /// An error's answer: its status, headers (`Retry-After` on 429) and the `Error` schema's JSON.
    static func errorParts(_ error: RPCError, status: HTTPResponse.Status? = nil) -> (HTTPResponse.Status, HTTPFields, Data) {
        let status = status ?? Self.status(of: error.code)
        let body = Components.Schemas._Error(error: .init(code: error.code.name, message: error.message))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(body)) ?? Data(#"{"error":{"code":"internal","message":"unencodable"}}"#.utf8)
        var headers: HTTPFields = [.contentType: "application/json"]
        if status == .tooManyRequests { headers[.retryAfter] = "1" }
        return (status, headers, data)
    }

    static func errorResponse(_ error: RPCError, status: HTTPResponse.Status? = nil) -> Response {
        let (status, headers, data) = errorParts(error, status: status)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns what the generated server or a handler throws into the `Error` schema's answer: a body
/// that does not decode (400, naming the field), an `RPCError` (its status), or the runtime's own
/// refusals (their status).
struct HTTPErrorMiddleware: ServerMiddleware {
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        do {
            return try await next(request, body, metadata)
        } catch let error as ServerError {
            let (status, headers, data): (HTTPResponse.Status, HTTPFields, Data) = switch error.underlyingError {
            case let failure as RPCError: HTTPAPI.errorParts(failure)
            case let failure as DecodingError: HTTPAPI.errorParts(HTTPAPI.invalidBody(failure))
            default:
                HTTPAPI.errorParts(
                    RPCError(error.httpStatus.kind == .clientError ? .invalidArgument : .internal, error.causeDescription), status: error.httpStatus)
            }
            return (HTTPResponse(status: status, headerFields: headers), HTTPBody(data))
        }
    }
}

/// Refuses a body past `HTTPAPI.bodyLimit` (413) before anything reads it, and hands the rest on
/// collected.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        do {
            _ = try await request.collectBody(upTo: HTTPAPI.bodyLimit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return HTTPAPI.errorResponse(
                .invalidArgument("the request body exceeds \(HTTPAPI.bodyLimit) bytes"), status: .contentTooLarge)
        }
        return try await next(request, context)
    }
}

extension ClusterMap {
    /// A JSON decoding error as "field 'x.y': what was wrong".
    static func describeJSON(_ error: any Error) -> String {
        (error as? DecodingError).map(describe) ?? "\(error)"
    }
}
