import Foundation
import SparrowStorage
import Testing

/// The same live coordinator through its three doors: the C client (protoc-c, libprotobuf-c),
/// HTTP/JSON, and `sparrow query`, with a text query encoded by the coordinator.
@Suite(.serialized) struct ClientTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let shared = (root as NSString).deletingLastPathComponent + "/shared"

    static let words = ["protein", "gene", "cell", "cancer", "virus", "blood", "brain", "heart", "drug", "patient", "tumor", "immune"]

    static func documents() -> [TokenVectorRecord] {
        var random = SplitMix(state: 5)
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
        try LocalTestCluster.jsonl(Self.documents()).write(toFile: data + "/vectors.jsonl", atomically: false, encoding: .utf8)
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

        let curl = try LocalTestCluster.run(executable: "/usr/bin/curl", ["-sS", "-X", "POST", "\(http)/v1/search", "-H", "content-type: application/json",
                                                  "-d", #"{"query": "Protein and gene expression", "k": 5}"#])
        let reply = try JSONSerialization.jsonObject(with: Data(curl.text.utf8)) as! [String: Any]
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

        let bad = try LocalTestCluster.run(executable: "/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "\(http)/v1/search", "-d", "{\"k\": 3}"])
        #expect(bad.text == "400")
        let metrics = try LocalTestCluster.run(executable: "/usr/bin/curl", ["-sS", "\(http)/metrics"])
        #expect(metrics.text.contains("sparrow_rpc_requests_total"), "\(metrics.text.prefix(500))")
    }
}
