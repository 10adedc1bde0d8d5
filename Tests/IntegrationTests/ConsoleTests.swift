import Foundation
import SparrowStorage
import Testing

/// The web console in a real browser: headless Chromium (Debian's `chromium`) loads the page
/// from a live coordinator, runs a text query, and the hits, their stored fields with the
/// matched tokens highlighted, their contributions, and the cluster's nodes appear; a
/// screenshot is kept ($SPARROW_ARTIFACTS, else the temporary directory).
@Suite(.serialized) struct ConsoleTests {
    static let chromium = "/usr/bin/chromium"

    static func browser(_ arguments: [String]) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: chromium) else { throw TestFailure("\(chromium) is missing: install chromium (ops/install-deps)") }
        let home = NSTemporaryDirectory() + "sparrow-chromium-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: home) }
        let output = try LocalTestCluster.run(executable: "/usr/bin/env", [
            "HOME=\(home)", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--user-data-dir=\(home)", "--virtual-time-budget=15000",
        ] + arguments)
        return output.text
    }

    @Test func aQueryInTheConsoleShowsHitsFieldsAndContributions() throws {
        let data = NSTemporaryDirectory() + "sparrow-console-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer {
            _ = try? LocalTestCluster.run(["local", "down", "--data", data + "/cluster"])
            try? FileManager.default.removeItem(atPath: data)
        }
        let documents = ClientTests.documents().enumerated().map { index, record in
            TokenVectorRecord(id: record.id, vector: record.vector, fields: ["title": record.vector.keys.sorted().joined(separator: " and ") + " study \(index)"])
        }
        try documents.map(\.jsonLine).joined().write(toFile: data + "/vectors.jsonl", atomically: false, encoding: .utf8)
        let up = try LocalTestCluster.run([
            "local", "up", "--shards", "2", "--data", data + "/cluster", "--vectors", data + "/vectors.jsonl",
            "--model", ClientTests.shared + "/models/splade-tiny", "--idf", ClientTests.shared + "/models/msmarco-idf/idf.json",
        ])
        #expect(up.status == 0, "\(up.text)")
        let local = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: data + "/cluster/local.json"))) as! [String: Any]
        let page = (local["coordinatorHTTP"] as! String) + "/?q=protein%20and%20gene&k=5"

        let dom = try Self.browser(["--dump-dom", page])
        #expect(dom.contains(#"data-searched="true""#), "the search did not finish: \(dom.suffix(2000))")
        #expect(dom.components(separatedBy: #"<li data-id="doc-"#).count - 1 == 5, "5 hits: \(dom.suffix(3000))")
        #expect(dom.contains("coverage 2/2 shards"), "\(dom.suffix(2000))")
        #expect(dom.contains(#"class="contribution""#) && dom.contains(">protein "), "contributions are shown")
        #expect(dom.contains("<mark>protein</mark>"), "matched tokens are highlighted in the stored fields")
        #expect(dom.contains("node-0") && dom.contains(#"class="up""#), "the cluster's nodes are shown")
        #expect(dom.contains("epoch 1 · build none · this coordinator owns the map"), "the map's epoch, build and owner are shown")

        let artifacts = ProcessInfo.processInfo.environment["SPARROW_ARTIFACTS"] ?? NSTemporaryDirectory()
        let screenshot = artifacts + "/sparrow-console.png"
        try? FileManager.default.removeItem(atPath: screenshot)
        _ = try Self.browser(["--window-size=1280,900", "--screenshot=\(screenshot)", page])
        let size = (try? FileManager.default.attributesOfItem(atPath: screenshot)[.size] as? Int) ?? 0
        #expect((size ?? 0) > 10_000, "no screenshot at \(screenshot)")
        print("console screenshot: \(screenshot)")
    }
}
