import Foundation
import SparrowClient
import SparrowWire
import Testing

/// `sparrow build` → `sparrow local up` → `sparrow ctl load` → queries, with the release
/// binary (encoding SciFact in a debug build would take most of an hour; `ops/test` builds it).
@Suite(.serialized) struct BuildLoadTests {
    static let root = ClientTests.root
    static let shared = ClientTests.shared
    static let model = shared + "/models/splade-tiny"
    static let idf = shared + "/models/msmarco-idf/idf.json"
    static let scifact = shared + "/datasets/scifact"

    static let release: String = ProcessInfo.processInfo.environment["SPARROW_RELEASE_BIN"] ?? root + "/.build/release/sparrow"

    /// Runs the release binary; fails the test with a clear reason when it was not built.
    static func sparrow(_ arguments: [String]) throws -> (status: Int32, text: String) {
        guard FileManager.default.isExecutableFile(atPath: release) else {
            throw TestFailure("\(release) is missing: run `swift build -c release --product sparrow` first (ops/test does)")
        }
        return try LocalTestCluster.run(executable: release, arguments)
    }

    static func succeed(_ arguments: [String]) throws -> String {
        let output = try sparrow(arguments)
        guard output.status == 0 else { throw TestFailure("sparrow \(arguments.joined(separator: " ")) failed (\(output.status)): \(output.text)") }
        return output.text
    }

    static let scratch: String = {
        let path = NSTemporaryDirectory() + "sparrow-builds-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// SciFact's splade-tiny vectors (as Hugging Face encodes them, `../shared/bench/data`) with the
    /// MS MARCO IDF, built into 3 shards once per test run. Not encoded here: encoding its 5,183
    /// documents took 7 of CI's 46 minutes, and the encoder has tests of its own (its fidelity to
    /// Hugging Face, builds from a corpus, and below, a killed encoding that resumes).
    static let spladeBuild = Result<String, Error> {
        let out = scratch + "/scifact-splade"
        _ = try succeed([
            "build", "--vectors", shared + "/bench/data/scifact.docs.jsonl.gz", "--model", model, "--idf", idf, "--shards", "3", "--out", out,
            "--keep-vectors",
        ])
        return out
    }

    /// The last JSON object line of a command's output.
    static func lastJSON(_ text: String) throws -> [String: Any] {
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestFailure("no JSON line in: \(text)")
        }
        return object
    }

    /// Loads `build` into a fresh 3-shard cluster whose query encoder `encoder` sets, evaluates SciFact
    /// through it, and compares with an exact brute-force run (ops/bench/exact_eval.py, pure
    /// Python) over the build's own vectors and queries encoded with `queryArguments`.
    func expectClusterMatchesExactReference(build: String, encoder: (inout LocalClusterLauncher) -> Void, queryArguments: [String]) throws {
        let cluster = try LocalTestCluster(shards: 3, binary: Self.release, configure: encoder)
        defer { cluster.down() }
        _ = try Self.succeed(["ctl", "load", build] + cluster.access)
        let measured = try Self.lastJSON(try Self.succeed([
            "eval"] + cluster.access + ["--queries", Self.scifact + "/queries.jsonl", "--qrels", Self.scifact + "/qrels.tsv",
        ]))
        let queries = cluster.data + "/queries.vectors.jsonl"
        try Self.succeed(["encode-query", "--queries", Self.scifact + "/queries.jsonl"] + queryArguments).write(toFile: queries, atomically: false, encoding: .utf8)
        let reference = try LocalTestCluster.run(executable: "/usr/bin/python3", [
            Self.root + "/ops/bench/exact_eval.py", "--docs", build + "/vectors.jsonl.gz", "--queries", queries, "--qrels", Self.scifact + "/qrels.tsv",
        ])
        #expect(reference.status == 0, "\(reference.text)")
        let exact = try Self.lastJSON(reference.text)
        #expect(measured["partial_results"] as? Int == 0)
        for metric in ["ndcg@10", "recall@100"] {
            let got = try #require(measured[metric] as? Double), want = try #require(exact[metric] as? Double)
            #expect(abs(got - want) <= 0.001, "\(metric): cluster \(got), exact \(want)")
        }
    }

    @Test func scifactWithSpladeMatchesExactBruteForce() throws {
        try expectClusterMatchesExactReference(
            build: try Self.spladeBuild.get(), encoder: { ($0.model, $0.idf) = (Self.model, Self.idf) },
            queryArguments: ["--model", Self.model, "--idf", Self.idf])
    }

    @Test func scifactWithBM25MatchesExactBruteForce() throws {
        let build = Self.scratch + "/scifact-bm25"
        _ = try Self.succeed([
            "build", "--corpus", Self.scifact + "/corpus.jsonl.gz", "--model", Self.model, "--weighting", "bm25", "--shards", "3", "--out", build, "--keep-vectors",
        ])
        try expectClusterMatchesExactReference(
            build: build, encoder: { ($0.model, $0.weighting) = (Self.model, "bm25") }, queryArguments: ["--model", Self.model])
    }

    @Test func oneThreeAndEightShardsAnswerEveryQueryIdentically() throws {
        let vectors = try Self.spladeBuild.get() + "/vectors.jsonl.gz"
        var runs: [Int: String] = [:]
        for shards in [1, 3, 8] {
            let build = Self.scratch + "/scifact-\(shards)"
            _ = try Self.succeed(["build", "--vectors", vectors, "--model", Self.model, "--idf", Self.idf, "--shards", "\(shards)", "--out", build])
            let cluster = try LocalTestCluster(shards: shards, binary: Self.release) { ($0.model, $0.idf) = (Self.model, Self.idf) }
            defer { cluster.down() }
            _ = try Self.succeed(["ctl", "load", build] + cluster.access)
            let run = build + ".run"
            _ = try Self.succeed([
                "eval"] + cluster.access + ["--queries", Self.scifact + "/queries.jsonl", "--qrels", Self.scifact + "/qrels.tsv",
                "--k", "100", "--run", run,
            ])
            runs[shards] = try String(contentsOfFile: run, encoding: .utf8)
        }
        #expect(runs[1]!.split(separator: "\n").count == 300 * 100)
        #expect(runs[1] == runs[3])
        #expect(runs[1] == runs[8])
    }

    @Test func killedBuildResumesToByteIdenticalManifests() throws {
        let corpus = Self.scratch + "/scifact-400.jsonl"
        let lines = try LocalTestCluster.run(executable: "/bin/sh", ["-c", "zcat '\(Self.scifact)/corpus.jsonl.gz' | head -400"]).text
        try lines.write(toFile: corpus, atomically: false, encoding: .utf8)
        let arguments = ["build", "--corpus", corpus, "--model", Self.model, "--idf", Self.idf, "--shards", "3", "--batch-documents", "40", "--out"]
        _ = try Self.succeed(arguments + [Self.scratch + "/whole"])

        let interrupted = Self.scratch + "/interrupted"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.release)
        process.arguments = arguments + [interrupted]
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        func finishedBatches() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: interrupted + "/work/batches")) ?? []).filter { $0.hasPrefix("batch-") }.count
        }
        while process.isRunning && finishedBatches() < 3 && Date() < deadline { usleep(20_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(finishedBatches() >= 3 && finishedBatches() < 10, "killed after \(finishedBatches()) of 10 batches")
        #expect(!FileManager.default.fileExists(atPath: interrupted + "/build.json"))

        let resumed = try Self.succeed(arguments + [interrupted])
        #expect(!resumed.isEmpty)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: interrupted + "/report.json"))) as! [String: Any]
        let encoded = (report["stages"] as! [[String: Any]]).first { $0["name"] as? String == "encode" }?["documents"] as? Int
        #expect((encoded ?? 400) < 400, "the resumed build re-encoded everything")
        for file in ["build.json", "shards/shard-0/manifest.json", "shards/shard-1/manifest.json", "shards/shard-2/manifest.json"] {
            let a = FileManager.default.contents(atPath: Self.scratch + "/whole/" + file)
            let b = FileManager.default.contents(atPath: interrupted + "/" + file)
            #expect(a != nil && a == b, "\(file) differs")
        }
    }

    @Test func loadIsAllOrNothingAndRefusesAnotherEncoder() async throws {
        let build = try Self.spladeBuild.get()
        // A coordinator weighting queries for BM25 refuses an IDF-weighted build, before any upload.
        let bm25 = try LocalTestCluster(shards: 3, binary: Self.release) { ($0.model, $0.weighting) = (Self.model, "bm25") }
        let refused = try Self.sparrow(["ctl", "load", build] + bm25.access)
        bm25.down()
        #expect(refused.status != 0)
        #expect(refused.text.contains("refused: the build's query weighting is idf, the coordinator's bm25"), "\(refused.text)")

        // A first, small build serves; then a load that cannot reach one node changes nothing.
        let small = Self.scratch + "/scifact-small"
        let head = try LocalTestCluster.run(executable: "/bin/sh", ["-c", "zcat '\(build)/vectors.jsonl.gz' | head -300"]).text
        try head.write(toFile: Self.scratch + "/small.jsonl", atomically: false, encoding: .utf8)
        _ = try Self.succeed(["build", "--vectors", Self.scratch + "/small.jsonl", "--model", Self.model, "--idf", Self.idf, "--shards", "3", "--out", small])
        let cluster = try LocalTestCluster(shards: 3, binary: Self.release) { ($0.model, $0.idf) = (Self.model, Self.idf) }
        defer { cluster.down() }
        let loaded = try Self.succeed(["ctl", "load", small] + cluster.access)
        // Each upload shows its bytes, rate and total time.
        #expect(loaded.split(separator: "\n").contains { $0.hasPrefix("load: shard-0 → ") && $0.contains(" MB, ") && $0.contains(" MB/s") }, "\(loaded)")
        let client = try cluster.client()
        defer { Task { await client.close() } }
        let before = try await client.call(CoordinatorMethod.cluster, Sparrow_V1_ClusterRequest(), timeout: .seconds(5), as: Sparrow_V1_ClusterResponse.self)
        let smallID = try #require(try Self.lastBuildID(small))
        #expect(before.buildID == smallID)

        // The coordinator checks for itself too: a build no replica has prepared, or with another IDF.
        var activate = Sparrow_V1_ActivateBuildRequest()
        activate.buildID = try #require(try Self.lastBuildID(build))
        activate.shards = ["shard-0", "shard-1", "shard-2"]
        activate.encoder = before.encoder
        await #expect(throws: RPCError.self) {
            _ = try await client.call(CoordinatorMethod.activateBuild, activate, timeout: .seconds(30), as: Sparrow_V1_ActivateBuildResponse.self)
        }
        activate.encoder.idf = "0000000000000000"
        do {
            _ = try await client.call(CoordinatorMethod.activateBuild, activate, timeout: .seconds(30), as: Sparrow_V1_ActivateBuildResponse.self)
            Issue.record("a build with another IDF was activated")
        } catch let error as RPCError {
            #expect(error.code == .failedPrecondition)
            #expect(error.message.contains("IDF table"), "\(error)")
        }

        kill(cluster.pids["node-2"]!, SIGKILL)
        let failed = try Self.sparrow(["ctl", "load", build] + cluster.access)
        #expect(failed.status != 0, "\(failed.text)")
        let after = try await client.call(CoordinatorMethod.cluster, Sparrow_V1_ClusterRequest(), timeout: .seconds(5), as: Sparrow_V1_ClusterResponse.self)
        #expect(after.buildID == smallID)
        #expect(after.epoch == before.epoch)
        var query = Sparrow_V1_QueryRequest()
        query.text = "vitamin d and tuberculosis"
        query.k = 100
        let answer = try await client.call(CoordinatorMethod.search, query, timeout: .seconds(5), as: Sparrow_V1_QueryResponse.self)
        let smallIDs = Set(head.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["id"] as? String
        })
        #expect(answer.coverage.shardsOk == 2)
        #expect(!answer.hits.isEmpty && answer.hits.allSatisfy { smallIDs.contains($0.id) }, "hits from outside the serving build")
    }

    static func lastBuildID(_ build: String) throws -> String? {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: build + "/build.json"))) as? [String: Any]
        return object?["build_id"] as? String
    }
}
