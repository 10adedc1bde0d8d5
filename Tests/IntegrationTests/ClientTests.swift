import Foundation
import SparrowCoordinator
import SparrowCore
import SparrowStorage
import Testing

/// The same live coordinator through its three doors: the C client (protoc-c, libprotobuf-c),
/// HTTP/JSON, and `sparrow query`, with a text query encoded by the coordinator.
@Suite(.serialized) struct ClientTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    /// `../shared` beside the checkout, or `$SPARROW_SHARED`.
    static let shared = ProcessInfo.processInfo.environment["SPARROW_SHARED"] ?? (root as NSString).deletingLastPathComponent + "/shared"

    static let words = ["protein", "gene", "cell", "cancer", "virus", "blood", "brain", "heart", "drug", "patient", "tumor", "immune"]

    static func documents() -> [TokenVectorRecord] {
        var random = SplitMix64(seed: 5)
        return (0..<240).map { doc in
            var vector: [String: Float] = [:]
            for word in words.shuffled(using: &random).prefix(4) { vector[word] = Float(Int.random(in: 1...20, using: &random)) / 8 }
            return TokenVectorRecord(id: "doc-\(doc)", vector: vector)
        }
    }

    @Test func cClientHTTPAndCLIAgreeOnATextQuery() throws {
        let make = try LocalTestCluster.run(executable: "/usr/bin/make", ["-s", "-C", Self.root + "/clients/c"])
        #expect(make.status == 0, "make clients/c: \(make.text)")
        let data = NSTemporaryDirectory() + "sparrow-clients-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer {
            _ = try? LocalTestCluster.run(["local", "down", "--data", data + "/cluster"])
            try? FileManager.default.removeItem(atPath: data)
        }
        try Self.documents().map(\.jsonLine).joined().write(toFile: data + "/vectors.jsonl", atomically: false, encoding: .utf8)
        let up = try LocalTestCluster.run([
            "local", "up", "--shards", "3", "--data", data + "/cluster", "--vectors", data + "/vectors.jsonl",
            "--model", Self.shared + "/models/splade-tiny", "--idf", Self.shared + "/models/msmarco-idf/idf.json",
        ])
        #expect(up.status == 0, "\(up.text)")
        let local = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: data + "/cluster/local.json"))) as! [String: Any]
        let rpc = local["coordinatorRPC"] as! String
        let http = local["coordinatorHTTP"] as! String

        let c = try LocalTestCluster.run(executable: Self.root + "/clients/c/build/sparrow-query", ["--k", "5", rpc, "Protein and gene expression"])
        #expect(c.status == 0, "\(c.text)")
        #expect(c.text.contains("coverage 3/3"), "\(c.text)")
        let cHits = c.text.split(separator: "\n").filter { $0.first?.isNumber == true }.map { $0.split(separator: "\t")[3] }.map(String.init)
        #expect(cHits.count == 5)

        let reply = try Self.json(http, "/v1/search", body: #"{"query": "Protein and gene expression", "k": 5}"#)
        let httpHits = (reply["hits"] as! [[String: Any]]).map { $0["id"] as! String }
        #expect(httpHits == cHits)
        let query = reply["query"] as! [String: Double]
        #expect(Set(query.keys) == ["protein", "and", "gene", "expression"])
        let coverage = reply["coverage"] as! [String: Any]
        #expect((coverage["shards_ok"] as! NSNumber).intValue == 3)

        let cli = try LocalTestCluster.run(["query", "--coordinator", rpc, "--k", "5", "Protein and gene expression"])
        #expect(cli.status == 0)
        let cliHits = cli.text.split(separator: "\n").dropFirst(2).map { $0.split(separator: " ", omittingEmptySubsequences: true)[3] }.map(String.init)
        #expect(cliHits == cHits, "\(cli.text)")

        let bad = try Self.status(http, "/v1/search", body: "{\"k\": 3}")
        #expect(bad == "400")
        try Self.checkTheSpec(http)
        let metrics = try LocalTestCluster.run(executable: "/usr/bin/curl", ["-sS", "\(http)/metrics"])
        #expect(metrics.text.contains("sparrow_rpc_requests_total"), "\(metrics.text.prefix(500))")
        #expect(metrics.text.contains("sparrow_coordinator_shard_duration_seconds"), "per-shard latency histogram")

        // Explain: each hit lists the matched tokens, whose products sum to its score.
        let explained = try Self.json(http, "/v1/search", body: #"{"vector": {"protein": 1.5, "gene": 0.5}, "k": 3, "explain": true}"#)
        for hit in explained["hits"] as! [[String: Any]] {
            let terms = hit["explanation"] as! [[String: Any]]
            #expect(!terms.isEmpty && terms.allSatisfy { ["protein", "gene"].contains($0["token"] as! String) })
            let sum = terms.reduce(0.0) { $0 + ($1["query_weight"] as! Double) * ($1["document_weight"] as! Double) }
            #expect(abs(sum - (hit["score"] as! Double)) < 0.01 * max(1, sum), "\(hit)")
        }
        // Approximate through the three doors; threshold 0 reads every posting, so the hits are
        // the exact ones, and every answer says the shards answered approximately.
        let cApproximate = try LocalTestCluster.run(
            executable: Self.root + "/clients/c/build/sparrow-query", ["--k", "5", "--threshold", "0", "--heap-factor", "1", rpc, "Protein and gene expression"])
        #expect(cApproximate.text.contains("mode approximate (3 shards approximate)"), "\(cApproximate.text)")
        #expect(cApproximate.text.split(separator: "\n").filter { $0.first?.isNumber == true }.map { String($0.split(separator: "\t")[3]) } == cHits)
        let httpApproximate = try Self.json(
            http, "/v1/search", body: #"{"query": "Protein and gene expression", "k": 5, "mode": "approximate", "threshold": 0, "heap_factor": 1}"#)
        #expect((httpApproximate["hits"] as! [[String: Any]]).map { $0["id"] as! String } == cHits)
        #expect(httpApproximate["mode"] as? String == "approximate" && (httpApproximate["approximate_shards"] as? NSNumber)?.intValue == 3)
        let cliApproximate = try LocalTestCluster.run(
            ["query", "--coordinator", rpc, "--k", "5", "--approximate", "--threshold", "0", "--heap-factor", "1", "Protein and gene expression"])
        #expect(cliApproximate.text.contains("approximate (3 shards approximate)"), "\(cliApproximate.text)")
        for body in [#"{"query": "protein", "mode": "approximate"}"#, #"{"query": "protein", "recall": 0.9}"#,
                     #"{"query": "protein", "mode": "approximate", "recall": 1.5}"#, #"{"query": "protein", "mode": "fast"}"#] {
            #expect(try Self.status(http, "/v1/search", body: body) == "400", "\(body)")
        }
        let cluster = try Self.json(http, "/v1/cluster")
        #expect((cluster["shards"] as! [[String: Any]]).map { $0["shard"] as! String } == ["shard-0", "shard-1", "shard-2"])
        #expect((try Self.json(http, "/healthz"))["status"] as? String == "ok")
        let pids = (local["processes"] as! [[String: Any]]).filter { $0["name"] as? String == "node-1" }.map { ($0["pid"] as! NSNumber).int32Value }
        kill(pids[0], SIGKILL)
        // /healthz tells what the health checks (every second) found last: it calls no node.
        var health = try Self.json(http, "/healthz")
        for _ in 0..<50 where health["status"] as? String != "degraded" {
            usleep(100_000)
            health = try Self.json(http, "/healthz")
        }
        #expect(health["status"] as? String == "degraded")
        #expect((health["nodes"] as! [String: String])["node-0"] == "ok")
        #expect((health["nodes"] as! [String: String])["node-1"] != "ok")
        let partial = try Self.json(http, "/v1/search", body: #"{"query": "protein", "k": 3}"#)
        let partialCoverage = partial["coverage"] as! [String: Any]
        #expect((partialCoverage["shards_ok"] as! NSNumber).intValue == 2)
        #expect(((partialCoverage["failed"] as! [[String: Any]]).first?["shard"] as? String) == "shard-1")
    }

    /// The HTTP API is the one its OpenAPI document describes: the coordinator serves the document
    /// it was generated from, and refuses what the document does not allow, naming it.
    static func checkTheSpec(_ http: String) throws {
        let served = try json(http, "/v1/openapi.json")
        let built = try JSONSerialization.jsonObject(with: HTTPAPI.documentJSON()) as! [String: Any]
        #expect(NSDictionary(dictionary: served) == NSDictionary(dictionary: built))
        #expect(served["openapi"] as? String == "3.1.0")
        let paths = (served["paths"] as! [String: Any]).keys.sorted()
        #expect(paths == ["/", "/healthz", "/metrics", "/v1/cluster", "/v1/openapi.json", "/v1/search"])
        // A field the schema does not have, a body that is not JSON, one past the limit.
        let unknown = try output(http, "/v1/search", body: #"{"query": "x", "top_k": 3}"#)
        #expect(unknown.contains("invalid_argument") && unknown.contains("top_k"), "\(unknown)")
        let form = try LocalTestCluster.run(executable: "/usr/bin/curl", ["-sS", "-X", "POST", http + "/v1/search", "-d", #"{"query": "x"}"#]).text
        #expect(form.contains("expected: application/json"), "\(form)")
        let big = FileManager.default.temporaryDirectory.appendingPathComponent("sparrow-big-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: big) }
        try Data(repeating: 0x20, count: HTTPAPI.bodyLimit + 1).write(to: URL(fileURLWithPath: big))
        #expect(try status(http, "/v1/search", body: "@" + big) == "413")
    }

    /// What the coordinator's HTTP API answers (POST of JSON when there is a body; "@file" reads it from a file).
    static func output(_ base: String, _ path: String, body: String? = nil, writing: [String] = []) throws -> String {
        var arguments = ["-sS"] + writing + [base + path]
        if let body { arguments += ["-X", "POST", "-H", "content-type: application/json", "--data-binary", body] }
        return try LocalTestCluster.run(executable: "/usr/bin/curl", arguments).text
    }

    /// The HTTP status of that answer.
    static func status(_ base: String, _ path: String, body: String? = nil) throws -> String {
        try output(base, path, body: body, writing: ["-o", "/dev/null", "-w", "%{http_code}"])
    }

    /// A JSON object from the coordinator's HTTP API (POST when there is a body).
    static func json(_ base: String, _ path: String, body: String? = nil) throws -> [String: Any] {
        let output = try output(base, path, body: body)
        guard let object = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] else {
            throw TestFailure("\(path) answered: \(output)")
        }
        return object
    }
}
