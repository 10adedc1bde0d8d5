import NIOCore
import SparrowCoordinator
import SparrowWire
import Testing

/// `POST /v1/search` bodies as the HTTP API decodes them (`HTTPAPI.decodeSearch`).
@Suite struct SearchBodyTests {
    func decode(_ json: String) throws -> Sparrow_V1_QueryRequest {
        try HTTPAPI.decodeSearch(ByteBuffer(string: json))
    }

    @Test func aBodyBecomesTheQueryItAsksFor() throws {
        let query = try decode(#"{"vector": {"b": 0.5, "a": 2}, "k": 3, "explain": true, "filter": {"lang": "en"}, "timeout_ms": 200}"#)
        #expect(query.vector.weights == ["a": 2, "b": 0.5])
        #expect(query.k == 3 && query.explain && query.timeoutMs == 200)
        #expect(query.filter.values == ["lang": "en"])
        let text = try decode(#"{"query": "sparse retrieval"}"#)
        #expect(text.text == "sparse retrieval" && text.k == 10 && !text.explain && text.vector.isEmpty)
    }

    @Test func aBadBodyIsAnInvalidArgumentNamingTheField() throws {
        for (body, field) in [(#"{"query": "x", "k": "ten"}"#, "field 'k'"), (#"{"query": "x", "k": -1}"#, ""), (#"{"vector": {"a": "heavy"}}"#, "field 'vector.a'"), ("[]", ""), (#"{"query": "tr"#, "")] {
            let error = #expect(throws: RPCError.self, "\(body)") { try decode(body) }
            #expect(error?.code == .invalidArgument, "\(body)")
            #expect(error?.message.hasPrefix("request body is not a valid search: \(field)") == true, "\(body): \(error?.message ?? "")")
        }
    }
}
