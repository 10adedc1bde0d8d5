import Foundation
import NIOCore
import SparrowCoordinator
import SparrowCore
import SparrowWire
import Testing

/// `POST /v1/search` bodies as the HTTP API decodes them (`HTTPAPI.decodeSearch`), and the same
/// queries from the protobuf route: both make one `SearchQuery`, checked the same way.
@Suite struct SearchBodyTests {
    func decode(_ json: String) throws -> SearchQuery {
        try HTTPAPI.decodeSearch(ByteBuffer(string: json))
    }

    @Test func aBodyBecomesTheQueryItAsksFor() throws {
        let query = try decode(#"{"vector": {"b": 0.5, "a": 2}, "k": 3, "explain": true, "filter": {"lang": "en"}, "timeout_ms": 200}"#)
        #expect(query.input == .vector(["a": 2, "b": 0.5]))
        #expect(query.k == 3 && query.explain && query.timeout == .milliseconds(200) && query.mode == .exact)
        #expect(query.filter == ["lang": "en"])
        let text = try decode(#"{"query": "sparse retrieval"}"#)
        #expect(text.input == .text("sparse retrieval") && text.k == 10 && !text.explain && text.timeout == nil)
        #expect(try decode(#"{"query": "x", "mode": "approximate", "recall": 0.9}"#).mode == .recall(0.9))
        #expect(try decode(#"{"query": "x", "mode": "approximate", "threshold": 0.2, "heap_factor": 0.9}"#).mode == .settings(.init(threshold: 0.2, heapFactor: 0.9)))
    }

    @Test func theProtobufRouteMakesTheSameQuery() throws {
        var request = Sparrow_V1_QueryRequest()
        request.vector = .init(["b": 0.5, "a": 2])
        request.k = 3
        request.explain = true
        request.filter = .init(["lang": "en"])
        request.timeoutMs = 200
        request.mode = .init(.recall(0.95))
        let json = #"{"vector": {"b": 0.5, "a": 2}, "k": 3, "explain": true, "filter": {"lang": "en"}, "timeout_ms": 200, "mode": "approximate", "recall": 0.95}"#
        #expect(try SearchQuery(request) == decode(json))
        var text = Sparrow_V1_QueryRequest()
        text.text = "sparse retrieval"
        #expect(try SearchQuery(text) == decode(#"{"query": "sparse retrieval"}"#))
    }

    @Test func aBadBodyIsAnInvalidArgumentNamingTheField() throws {
        for (body, field) in [(#"{"query": "x", "k": "ten"}"#, "field 'k'"), (#"{"query": "x", "mode": "fast"}"#, "field 'mode'"), (#"{"query": "x", "kk": 3}"#, ""), (#"{"vector": {"a": "heavy"}}"#, "field 'vector.a'"), ("[]", ""), (#"{"query": "tr"#, "")] {
            let error = #expect(throws: RPCError.self, "\(body)") { try decode(body) }
            #expect(error?.code == .invalidArgument, "\(body)")
            #expect(error?.message.hasPrefix("request body is not a valid search: \(field)") == true, "\(body): \(error?.message ?? "")")
        }
    }

    @Test func aQueryOutOfBoundsIsRefusedNamingWhatIsWrong() throws {
        for (body, words) in [
            (#"{"query": "x", "k": 0}"#, "k must be between 1"), (#"{"query": "x", "k": -1}"#, "k must be between 1"), (#"{"query": "x", "k": 10001}"#, "k must be between 1"),
            (#"{"vector": {"a": -1}}"#, "token 'a' has weight -1"), (#"{"query": "  "}"#, "non-empty text or vector"), (#"{"vector": {}}"#, "non-empty text or vector"),
            (#"{"query": "x", "mode": "approximate", "recall": 1.5}"#, "mode: target recall"), (#"{"query": "x", "mode": "approximate"}"#, "either \"recall\""),
            (#"{"query": "x", "recall": 0.9}"#, "need \"mode\": \"approximate\""),
        ] {
            let error = #expect(throws: RPCError.self, "\(body)") { try decode(body) }
            #expect(error?.code == .invalidArgument && error?.message.contains(words) == true, "\(body): \(error?.message ?? "")")
        }
        var request = Sparrow_V1_QueryRequest()
        request.text = String(repeating: "a", count: QueryLimits.maxTextBytes + 1)
        #expect(throws: RPCError.self) { try SearchQuery(request) }
    }

    /// The OpenAPI document states the bounds the server enforces (`QueryLimits`), so that a
    /// client generated from it knows them.
    @Test func theDocumentStatesTheQueryLimits() throws {
        let document = try #require(try JSONSerialization.jsonObject(with: HTTPAPI.documentJSON()) as? [String: Any])
        let schemas = (document["components"] as? [String: Any])?["schemas"] as? [String: Any]
        let search = try #require((schemas?["SearchRequest"] as? [String: Any])?["properties"] as? [String: [String: Any]])
        #expect(search["k"]?["maximum"] as? Int == QueryLimits.maxK)
        #expect(search["vector"]?["maxProperties"] as? Int == QueryLimits.maxTerms)
        #expect((search["query"]?["description"] as? String)?.contains(QueryLimits.maxTextBytes.formatted(.number.locale(Locale(identifier: "en_US")))) == true)
    }

    /// Stored fields cost a call per hit: a search asking for them is bounded in k.
    @Test func storedFieldsAreBoundedInK() throws {
        let error = #expect(throws: RPCError.self) { try decode(#"{"query": "x", "k": 101, "fields": true}"#) }
        #expect(error?.code == .invalidArgument && error?.message.contains("at most 100") == true, "\(error?.message ?? "")")
        #expect(try decode(#"{"query": "x", "k": 100, "fields": true}"#).k == 100)
    }
}
