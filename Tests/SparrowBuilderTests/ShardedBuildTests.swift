import Foundation
import SparrowBuilder
import SparrowCore
import SparrowIO
import SparrowStorage
import Testing

@Suite struct ShardedBuildTests {
    static let model = EncodeJobTests.model

    /// A small corpus (with a title on every third document) in a fresh scratch directory.
    static func corpus(_ count: Int, extra: [String] = []) throws -> (dir: String, path: String) {
        let dir = try EncodeJobTests.scratch()
        let topics = ["cerebral white matter", "vitamin d and tuberculosis", "breast cancer prognosis", "nanoparticles target cells"]
        let lines = (0..<count).map { i in
            i % 3 == 0
                ? #"{"_id": "doc\#(i)", "title": "Study \#(i)", "text": "\#(topics[i % 4]) in cohort \#(i)"}"#
                : #"{"_id": "doc\#(i)", "text": "\#(topics[i % 4]) measured \#(i) times"}"#
        } + extra
        try lines.joined(separator: "\n").write(toFile: dir + "/corpus.jsonl", atomically: false, encoding: .utf8)
        return (dir, dir + "/corpus.jsonl")
    }

    static func options(_ corpus: String, out: String, shards: Int = 3, slice: (Int, Int) = (0, 1), skipBad: Bool = false) -> BuildOptions {
        BuildOptions(
            source: .corpus(corpus), model: model, shards: shards, out: out, threads: 2, batchDocuments: 7, slice: slice,
            skipBad: skipBad, keepVectors: true, showProgress: false)
    }

    static func manifests(_ out: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for shard in try FileManager.default.contentsOfDirectory(atPath: out + "/shards") {
            files[shard] = try Data(contentsOf: URL(fileURLWithPath: "\(out)/shards/\(shard)/manifest.json"))
        }
        files["build.json"] = try Data(contentsOf: URL(fileURLWithPath: out + "/build.json"))
        return files
    }

    @Test func writesOneBundlePerShardHoldingEveryDocumentOnce() throws {
        let (dir, corpus) = try Self.corpus(40)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard case let .complete(manifest, report) = try ShardedBuild.run(Self.options(corpus, out: dir + "/build")) else {
            Issue.record("an unsliced build completes")
            return
        }
        #expect(manifest.documents == 40)
        #expect(manifest.shards.map(\.id) == ["shard-0", "shard-1", "shard-2"])
        let expected = (0..<40).reduce(into: [Int](repeating: 0, count: 3)) { $0[ShardPartitioner.shard(of: "doc\($1)", count: 3)] += 1 }
        #expect(manifest.shards.map(\.documents) == expected)
        #expect(manifest.encoder?.weighting == "idf")
        #expect(manifest.encoder?.documentSettings == "activation=log1p_relu prune=none")
        // splade-tiny ships no idf.json: the IDF is computed over the corpus.
        #expect(report.stages.map(\.name) == ["encode", "read", "idf", "write", "publish"])
        for name in ["build.json", "idf.json", "report.json", "shards", "vectors.jsonl.gz"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/build/\(name)"), "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/build/work"))
        #expect(try TokenVectorRecord.readAll(path: dir + "/build/vectors.jsonl.gz").map(\.id) == (0..<40).map { "doc\($0)" })

        // A bundle ingests into a shard that serves it under its build id.
        let shardDir = dir + "/served"
        try FileManager.default.copyItem(atPath: dir + "/build/shards/shard-1/shard.sst", toPath: dir + "/copy.sst")
        try ShardBuilder.prepare(sst: dir + "/copy.sst", directory: shardDir)
        do {
            let prepared = try Shard(directory: shardDir, prepared: true)
            #expect(prepared.manifest.buildID == manifest.buildID)
            #expect(prepared.manifest.liveDocuments == expected[1])
        }
        try ShardBuilder.activatePrepared(directory: shardDir)
        #expect(try Shard(directory: shardDir).manifest.buildID == manifest.buildID)

        #expect(throws: BuilderError.self) { try ShardedBuild.run(Self.options(corpus, out: dir + "/build")) }
    }

    @Test func interruptedAndSlicedBuildsGiveByteIdenticalManifests() throws {
        let (dir, corpus) = try Self.corpus(45)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ShardedBuild.run(Self.options(corpus, out: dir + "/whole"))
        let reference = try Self.manifests(dir + "/whole")

        // Half the batches exist (as after a kill): the rerun encodes only the others.
        guard case .slice = try ShardedBuild.run(Self.options(corpus, out: dir + "/resumed", slice: (1, 2))) else {
            Issue.record("a slice stops after encoding")
            return
        }
        let batches = try FileManager.default.contentsOfDirectory(atPath: dir + "/resumed/work/batches").filter { !$0.hasPrefix(".") }
        #expect(batches.count == 3)   // 45 documents in batches of 7: 0…6, slice 1 holds 1, 3, 5
        guard case let .complete(_, report) = try ShardedBuild.run(Self.options(corpus, out: dir + "/resumed")) else { return }
        #expect(report.stages.first { $0.name == "encode" }?.documents == 45 - 3 * 7)
        #expect(try Self.manifests(dir + "/resumed") == reference)

        // Two slices in two directories, merged into a third.
        _ = try ShardedBuild.run(Self.options(corpus, out: dir + "/a", slice: (0, 2)))
        #expect(throws: BuilderError.self) { try ShardedBuild.merge(sliceDirectories: [dir + "/a"], out: dir + "/merged", showProgress: false) }
        _ = try ShardedBuild.run(Self.options(corpus, out: dir + "/b", slice: (1, 2)))
        _ = try ShardedBuild.merge(sliceDirectories: [dir + "/a", dir + "/b"], out: dir + "/merged", showProgress: false)
        #expect(try Self.manifests(dir + "/merged") == reference)
    }

    /// Slices on one shared volume write into one directory at once: a slice starting (or
    /// resuming) clears only its own unfinished batch files, never another slice's in progress.
    @Test func aSliceLeavesOtherSlicesUnfinishedFilesAlone() throws {
        let (dir, corpus) = try Self.corpus(45)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let batches = dir + "/shared/work/batches"
        try FileManager.default.createDirectory(atPath: batches, withIntermediateDirectories: true)
        let others = ".batch-000001.bin.partial-7-1a2b", mine = ".batch-000002.bin.partial-7-3c4d"
        for name in [others, mine] { FileManager.default.createFile(atPath: batches + "/" + name, contents: Data([1])) }
        _ = try ShardedBuild.run(Self.options(corpus, out: dir + "/shared", slice: (0, 2)))
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: batches))
        #expect(left.contains(others), "slice 0 removed slice 1's file in progress")
        #expect(!left.contains(mine), "slice 0 kept its own killed run's file")
    }

    /// A budget of one byte spills every document to the sorters' runs and every posting to the
    /// writers' runs: the bundles must not change.
    @Test func aBuildInTinyMemoryWritesTheSameBundles() throws {
        let (dir, corpus) = try Self.corpus(45)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ShardedBuild.run(Self.options(corpus, out: dir + "/whole"))
        var tiny = Self.options(corpus, out: dir + "/tiny")
        tiny.memoryBudget = 1
        _ = try ShardedBuild.run(tiny)
        #expect(try Self.manifests(dir + "/tiny") == Self.manifests(dir + "/whole"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/tiny/vectors.jsonl.gz")) == Data(contentsOf: URL(fileURLWithPath: dir + "/whole/vectors.jsonl.gz")))
        #expect(!FileManager.default.fileExists(atPath: dir + "/tiny/work"))

        // The kept vectors rebuild the same postings without the model's encoder.
        let rebuilt = BuildOptions(
            source: .vectors(dir + "/whole/vectors.jsonl.gz"), model: Self.model, idf: dir + "/whole/idf.json", shards: 3, out: dir + "/rebuilt",
            threads: 1, showProgress: false)
        _ = try ShardedBuild.run(rebuilt)
        for shard in ["shard-0", "shard-1", "shard-2"] {
            let read = { (build: String) in try Shard(directory: Self.served(dir, build, shard)).manifest }
            let (original, again) = (try read("whole"), try read("rebuilt"))
            #expect(again.postingsChecksum == original.postingsChecksum && again.terms == original.terms && again.liveDocuments == original.liveDocuments)
        }
    }

    /// Serves a build's shard from a copy of its SST.
    static func served(_ dir: String, _ build: String, _ shard: String) throws -> String {
        let served = "\(dir)/served-\(build)-\(shard)"
        try FileManager.default.copyItem(atPath: "\(dir)/\(build)/shards/\(shard)/shard.sst", toPath: served + ".sst")
        try ShardBuilder.prepare(sst: served + ".sst", directory: served)
        try ShardBuilder.activatePrepared(directory: served)
        return served
    }

    /// Found by reading the code: `merge` force-unwrapped settings read from another directory.
    @Test func mergeRefusesSettingsThatDoNotHoldTogether() throws {
        let (dir, corpus) = try Self.corpus(10)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ShardedBuild.run(Self.options(corpus, out: dir + "/a", slice: (0, 2)))
        let path = dir + "/a/work/settings.json"
        var settings = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        settings["model"] = nil
        try JSONSerialization.data(withJSONObject: settings).write(to: URL(fileURLWithPath: path))
        #expect(throws: BuilderError.files(path: path, reason: "field 'model' is missing: weighting 'model' and idf need it")) {
            try ShardedBuild.merge(sliceDirectories: [dir + "/a"], out: dir + "/merged", showProgress: false)
        }
    }

    @Test func badLinesStopTheBuildWithTheirLineOrAreSkippedAndCounted() throws {
        let malformed = #"{"_id": "broken", "txt": "no text field"}"#
        let repeated = #"{"_id": "doc3", "text": "a second doc3"}"#
        let (dir, corpus) = try Self.corpus(10, extra: [malformed, repeated])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: IOError.malformedLine(path: corpus, line: 11, reason: "field 'text' is missing")) {
            try ShardedBuild.run(Self.options(corpus, out: dir + "/stopped"))
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/stopped/build.json"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/stopped/shards"))

        let (dir2, corpus2) = try Self.corpus(10, extra: [repeated])
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        #expect(throws: IOError.malformedLine(path: corpus2, line: 11, reason: "id 'doc3' already appeared on line 4")) {
            try ShardedBuild.run(Self.options(corpus2, out: dir2 + "/stopped"))
        }

        guard case let .complete(manifest, _) = try ShardedBuild.run(Self.options(corpus, out: dir + "/skipping", skipBad: true)) else { return }
        #expect(manifest.documents == 10)
        #expect(manifest.skippedLines == 2)
    }

    @Test func emptyCorpusAndChangedSettingsAreRefused() throws {
        let dir = try EncodeJobTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "\n  \n".write(toFile: dir + "/empty.jsonl", atomically: false, encoding: .utf8)
        #expect(throws: BuilderError.emptyCorpus(path: dir + "/empty.jsonl")) {
            try ShardedBuild.run(Self.options(dir + "/empty.jsonl", out: dir + "/out"))
        }
        let (corpusDir, corpus) = try Self.corpus(10)
        defer { try? FileManager.default.removeItem(atPath: corpusDir) }
        _ = try ShardedBuild.run(Self.options(corpus, out: dir + "/work-only", slice: (0, 2)))
        #expect(throws: BuilderError.self) { try ShardedBuild.run(Self.options(corpus, out: dir + "/work-only", shards: 4)) }
    }

    @Test func bm25BuildNeedsNoModelInferenceAndWeighsQueryTokensOne() throws {
        let (dir, corpus) = try Self.corpus(20)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = Self.options(corpus, out: dir + "/bm25", shards: 2)
        options.weighting = .bm25(k1: 0.9, b: 0.4)
        guard case let .complete(manifest, _) = try ShardedBuild.run(options) else { return }
        #expect(manifest.documents == 20)
        #expect(manifest.encoder?.weighting == "bm25")
        #expect(manifest.encoder?.document == nil)
        #expect(manifest.encoder?.documentSettings == "bm25 k1=0.9 b=0.4")
        #expect(!FileManager.default.fileExists(atPath: dir + "/bm25/idf.json"))
    }
}
