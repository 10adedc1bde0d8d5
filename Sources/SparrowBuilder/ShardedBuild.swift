import Foundation
import SparrowCore
import SparrowEncoder
import SparrowIO
import SparrowStorage

/// `sparrow build`: a corpus (or pre-encoded vectors) → validated → encoded in batches on all
/// threads (binary work files that also count the corpus IDF) → documents streamed to their
/// shards by a stable hash of their id, sorted in bounded memory → one bundle per shard (an SST
/// file and its manifest) and `build.json` (see `ShardedBuild.Finish`). Encoded batches are
/// files, so an interrupted build resumes from the last finished batch, and `--slice I/M` lets
/// M processes share the encoding before `merge` writes the bundles.
public struct BuildOptions: Sendable {
    public enum Source: Sendable {
        case corpus(String)
        case vectors(String)
    }

    public enum Weighting: Sendable {
        case model
        case bm25(k1: Double, b: Double)
    }

    public var source: Source
    public var model: String?
    public var weighting: Weighting
    /// nil: the model's idf.json, else IDF computed over the corpus; `corpus`; or a file.
    public var idf: String?
    public var shards: Int
    public var out: String
    public var threads: Int
    /// Documents per encoder call.
    public var encodeBatch: Int
    /// Documents per work file (the unit of resumption and of slicing).
    public var batchDocuments: Int
    public var slice: (index: Int, count: Int)
    public var skipBad: Bool
    /// Also write every document vector to BUILD_DIR/vectors.jsonl.gz (to rebuild with other
    /// shard counts without encoding, or to check results against an exact reference).
    public var keepVectors: Bool
    public var activation: Activation?
    public var pruning: Pruning
    /// Bytes the shards' sorting and writing may hold in memory (beside the encoder's threads).
    public var memoryBudget: Int
    public var showProgress: Bool

    public init(
        source: Source, model: String?, weighting: Weighting = .model, idf: String? = nil, shards: Int, out: String,
        threads: Int, encodeBatch: Int = 8, batchDocuments: Int = 1000, slice: (index: Int, count: Int) = (0, 1),
        skipBad: Bool = false, keepVectors: Bool = false, activation: Activation? = nil, pruning: Pruning = .none,
        memoryBudget: Int = BuildOptions.defaultMemoryBudget, showProgress: Bool = true
    ) {
        self.source = source
        self.model = model
        self.weighting = weighting
        self.idf = idf
        self.shards = shards
        self.out = out
        self.threads = max(1, threads)
        self.encodeBatch = max(1, encodeBatch)
        self.batchDocuments = max(1, batchDocuments)
        self.slice = slice
        self.skipBad = skipBad
        self.keepVectors = keepVectors
        self.activation = activation
        self.pruning = pruning
        self.memoryBudget = max(1, memoryBudget)
        self.showProgress = showProgress
    }

    public static let defaultMemoryBudget = 512 << 20
}

public enum ShardedBuild {
    public enum Outcome {
        /// One slice of a sliced build is encoded; `merge` finishes the build.
        case slice(index: Int, count: Int, documents: Int)
        case complete(BuildManifest, BuildReport)
    }

    /// Runs (or resumes) a build.
    public static func run(_ options: BuildOptions) throws -> Outcome {
        let layout = BuildLayout(root: options.out)
        try refuseFinished(layout)
        let started = Date()
        var encoder: SparseEncoder?
        let settings = try makeSettings(options, encoder: &encoder)
        try FileManager.default.createDirectory(atPath: layout.batches, withIntermediateDirectories: true)
        if FileManager.default.fileExists(atPath: layout.settings) {
            let existing = try JSONFiles.read(BuildSettings.self, from: layout.settings)
            guard existing == settings else {
                throw BuilderError.files(
                    path: layout.settings,
                    reason: "this directory holds work from a build with other settings; use another --out or remove \(layout.work)")
            }
        } else {
            try JSONFiles.write(settings, to: layout.settings)
        }
        var stages: [BuildReport.Stage] = []
        if let encoder {
            let (marker, stage) = try encodeSlice(settings: settings, layout: layout, encoder: encoder, options: options)
            stages.append(stage)
            if options.slice.count > 1 { return .slice(index: options.slice.index, count: options.slice.count, documents: marker.documents) }
        }
        let finishing = Finish(settings: settings, sources: [layout], out: layout, keepVectors: options.keepVectors,
                               memoryBudget: options.memoryBudget, showProgress: options.showProgress)
        let (manifest, report) = try finishing.run(stages: stages, started: started)
        return .complete(manifest, report)
    }

    /// Combines the encoded slices in `sliceDirectories` into a finished build in `out`.
    public static func merge(
        sliceDirectories: [String], out: String, keepVectors: Bool = false, memoryBudget: Int = BuildOptions.defaultMemoryBudget, showProgress: Bool = true
    ) throws -> (BuildManifest, BuildReport) {
        let layout = BuildLayout(root: out)
        try refuseFinished(layout)
        let sources = sliceDirectories.map(BuildLayout.init(root:))
        guard let first = sources.first else { throw BuilderError.files(path: out, reason: "merge needs the slice directories") }
        let settings = try JSONFiles.read(BuildSettings.self, from: first.settings)
        try settings.validate(first.settings)
        for source in sources.dropFirst() {
            guard try JSONFiles.read(BuildSettings.self, from: source.settings) == settings else {
                throw BuilderError.files(path: source.settings, reason: "settings differ from \(first.settings): not slices of one build")
            }
        }
        let finishing = Finish(settings: settings, sources: sources, out: layout, keepVectors: keepVectors,
                               memoryBudget: memoryBudget, showProgress: showProgress)
        return try finishing.run(stages: [], started: Date())
    }

    private static func refuseFinished(_ layout: BuildLayout) throws {
        if FileManager.default.fileExists(atPath: layout.buildManifest) {
            throw BuilderError.files(path: layout.buildManifest, reason: "this directory holds a finished build; choose another --out or remove it")
        }
    }

    // MARK: - Settings

    private static func makeSettings(_ options: BuildOptions, encoder: inout SparseEncoder?) throws -> BuildSettings {
        guard options.shards > 0 else { throw BuilderError.files(path: options.out, reason: "--shards must be at least 1") }
        guard options.slice.count >= 1, (0..<options.slice.count).contains(options.slice.index) else {
            throw BuilderError.files(path: options.out, reason: "--slice \(options.slice.index)/\(options.slice.count): I must be between 0 and M-1")
        }
        let (source, input): (BuildSettings.Source, String) = switch options.source {
        case let .corpus(path): (.corpus, path)
        case let .vectors(path): (.vectors, path)
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: input), let bytes = attributes[.size] as? Int else {
            throw IOError.cannotOpen(path: input, reason: "no such file")
        }
        let model = options.model.map { ($0 as NSString).standardizingPath }
        var weighting = BuildSettings.Weighting.vectors
        var idf = BuildSettings.IDF.none
        var k1: Double?, b: Double?
        switch (options.source, options.weighting) {
        case (.corpus, .model):
            guard let model else { throw BuilderError.files(path: input, reason: "encoding a corpus needs --model (or --weighting bm25, or --vectors)") }
            weighting = .model
            encoder = try SparseEncoder(modelDirectory: model, activation: options.activation, pruning: options.pruning)
        case let (.corpus, .bm25(bm25k1, bm25b)):
            guard model != nil else { throw BuilderError.files(path: input, reason: "--weighting bm25 needs --model for its tokenizer") }
            weighting = .bm25
            (k1, b) = (bm25k1, bm25b)
        case (.vectors, .bm25):
            throw BuilderError.files(path: input, reason: "--weighting bm25 builds from a corpus, not from --vectors")
        case (.vectors, .model):
            break
        }
        if weighting != .bm25, let model {
            switch options.idf {
            case nil:
                let modelIDF = (model as NSString).appendingPathComponent("idf.json")
                idf = FileManager.default.fileExists(atPath: modelIDF) ? .model : .corpus
            case "corpus"?: idf = .corpus
            case let path?: idf = .file((path as NSString).standardizingPath)
            }
            if idf == .corpus, source == .vectors {
                throw BuilderError.files(path: input, reason: "IDF over the corpus needs its text: give --idf FILE with --vectors")
            }
        } else if options.idf != nil {
            throw BuilderError.files(path: input, reason: weighting == .bm25 ? "--idf does not apply to bm25 (query tokens weigh 1)" : "--idf needs --model (for the tokenizer)")
        }
        if options.slice.count > 1 && encoder == nil {
            throw BuilderError.files(path: input, reason: "--slice shares the encoding; this build encodes nothing (bm25 or --vectors)")
        }
        return BuildSettings(
            source: source, input: (input as NSString).standardizingPath, inputBytes: bytes, weighting: weighting, model: model,
            encoder: encoder?.fingerprint, encoderSettings: encoder.map { "activation=\($0.activation.rawValue) prune=\($0.pruning)" },
            idf: idf, k1: k1, b: b, shards: options.shards, batchDocuments: options.batchDocuments,
            skipBad: options.skipBad)
    }

    // MARK: - Encoding

    /// Encodes this slice's batches that are not on disk yet, one work file per batch.
    private static func encodeSlice(
        settings: BuildSettings, layout: BuildLayout, encoder: SparseEncoder, options: BuildOptions
    ) throws -> (SliceMarker, BuildReport.Stage) {
        let (index, count) = options.slice
        // A killed run's unfinished batch files; only this slice's, since other slices may be
        // writing theirs into the same directory (a shared volume) right now.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: layout.batches)) ?? [] where name.hasPrefix(".") {
            guard let number = BuildLayout.batchNumber(ofPartial: name), number % count == index else { continue }
            unlink((layout.batches as NSString).appendingPathComponent(name))
        }
        var clock = BuildReport.Clock()
        let job = EncodeJob(encoder: encoder, options: .init(threads: options.threads, batchSize: options.encodeBatch, showProgress: false))
        let label = count > 1 ? "encode (slice \(index)/\(count))" : "encode"
        let progress = ProgressReporter(label: label, total: try LineReader.countNonBlankLines(path: settings.input), enabled: options.showProgress)
        let reader = try ValidatedReader.corpus(path: settings.input, skipBad: settings.skipBad)
        var pending: [CorpusDocument] = []
        var number = 0
        var encoded = 0
        func finishBatch() throws {
            defer { number += 1; pending.removeAll(keepingCapacity: true) }
            guard number % count == index, !FileManager.default.fileExists(atPath: layout.batch(number)) else { return }
            let (vectors, frequencies) = job.encodeParallel(pending.map(\.encoderInput))
            try WorkBatch.write(
                path: layout.batch(number), documents: zip(pending, vectors).map { EncodedDocument(id: $0.id, vector: $1) }, frequencies: frequencies)
            encoded += pending.count
        }
        while let document = try reader.next() {
            pending.append(document)
            if pending.count == settings.batchDocuments { try finishBatch() }
            progress.update(reader.count)
        }
        if !pending.isEmpty { try finishBatch() }
        guard reader.count > 0 else { throw BuilderError.emptyCorpus(path: settings.input) }
        progress.update(reader.count, final: true)
        if reader.skipped > 0 { warn("skipped \(reader.skipped) bad line(s) of \(settings.input): " + reader.problems.prefix(3).joined(separator: "; ")) }
        let marker = SliceMarker(slice: index, slices: count, documents: reader.count, batches: number, skippedLines: reader.skipped)
        try JSONFiles.write(marker, to: layout.sliceMarker(index, of: count))
        return (marker, clock.end("encode", documents: encoded))
    }

    static func warn(_ message: String) {
        FileHandle.standardError.write(Data("build: \(message)\n".utf8))
    }
}
