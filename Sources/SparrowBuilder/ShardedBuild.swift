import Foundation
import SparrowCore
import SparrowEncoder
import SparrowIO
import SparrowStorage

/// `sparrow build`: a corpus (or pre-encoded vectors) → validated → encoded in batches on all
/// threads → IDF → documents assigned to shards by a stable hash of their id → one bundle per
/// shard (an SST file and its manifest) and `build.json`. Encoded batches are files, so an
/// interrupted build resumes from the last finished batch, and `--slice I/M` lets M
/// processes share the encoding before `merge` writes the bundles.
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
    public var showProgress: Bool

    public init(
        source: Source, model: String?, weighting: Weighting = .model, idf: String? = nil, shards: Int, out: String,
        threads: Int, encodeBatch: Int = 8, batchDocuments: Int = 1000, slice: (index: Int, count: Int) = (0, 1),
        skipBad: Bool = false, keepVectors: Bool = false, activation: Activation? = nil, pruning: Pruning = .none, showProgress: Bool = true
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
        self.showProgress = showProgress
    }
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
        let (manifest, report) = try finish(settings: settings, sources: [layout], out: layout, keepVectors: options.keepVectors,
                                            showProgress: options.showProgress, stages: stages, started: started)
        return .complete(manifest, report)
    }

    /// Combines the encoded slices in `sliceDirectories` into a finished build in `out`.
    public static func merge(sliceDirectories: [String], out: String, keepVectors: Bool = false, showProgress: Bool = true) throws -> (BuildManifest, BuildReport) {
        let layout = BuildLayout(root: out)
        try refuseFinished(layout)
        let sources = sliceDirectories.map(BuildLayout.init(root:))
        guard let first = sources.first else { throw BuilderError.files(path: out, reason: "merge needs the slice directories") }
        let settings = try JSONFiles.read(BuildSettings.self, from: first.settings)
        for source in sources.dropFirst() {
            guard try JSONFiles.read(BuildSettings.self, from: source.settings) == settings else {
                throw BuilderError.files(path: source.settings, reason: "settings differ from \(first.settings): not slices of one build")
            }
        }
        return try finish(settings: settings, sources: sources, out: layout, keepVectors: keepVectors, showProgress: showProgress, stages: [], started: Date())
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
        let (source, input): (String, String) = switch options.source {
        case let .corpus(path): ("corpus", path)
        case let .vectors(path): ("vectors", path)
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: input), let bytes = attributes[.size] as? Int else {
            throw IOError.cannotOpen(path: input, reason: "no such file")
        }
        let model = options.model.map { ($0 as NSString).standardizingPath }
        var weighting = "vectors"
        var idf = "none"
        var k1: Double?, b: Double?
        switch (options.source, options.weighting) {
        case (.corpus, .model):
            guard let model else { throw BuilderError.files(path: input, reason: "encoding a corpus needs --model (or --weighting bm25, or --vectors)") }
            weighting = "model"
            encoder = try SparseEncoder(modelDirectory: model, activation: options.activation, pruning: options.pruning)
        case let (.corpus, .bm25(bm25k1, bm25b)):
            guard model != nil else { throw BuilderError.files(path: input, reason: "--weighting bm25 needs --model for its tokenizer") }
            weighting = "bm25"
            (k1, b) = (bm25k1, bm25b)
        case (.vectors, .bm25):
            throw BuilderError.files(path: input, reason: "--weighting bm25 builds from a corpus, not from --vectors")
        case (.vectors, .model):
            break
        }
        if weighting != "bm25", let model {
            switch options.idf {
            case nil:
                let modelIDF = (model as NSString).appendingPathComponent("idf.json")
                idf = FileManager.default.fileExists(atPath: modelIDF) ? "model" : "corpus"
            case "corpus"?: idf = "corpus"
            case let path?: idf = (path as NSString).standardizingPath
            }
            if idf == "corpus", source == "vectors" {
                throw BuilderError.files(path: input, reason: "IDF over the corpus needs its text: give --idf FILE with --vectors")
            }
        } else if options.idf != nil {
            throw BuilderError.files(path: input, reason: weighting == "bm25" ? "--idf does not apply to bm25 (query tokens weigh 1)" : "--idf needs --model (for the tokenizer)")
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
        for name in (try? FileManager.default.contentsOfDirectory(atPath: layout.batches)) ?? [] where name.hasPrefix(".") {
            unlink((layout.batches as NSString).appendingPathComponent(name))   // a killed run's unfinished file
        }
        let started = Date()
        let (index, count) = options.slice
        let job = EncodeJob(encoder: encoder, options: .init(threads: options.threads, batchSize: options.encodeBatch, showProgress: false))
        let label = count > 1 ? "encode (slice \(index)/\(count))" : "encode"
        let progress = ProgressReporter(label: label, total: try CorpusReader.countLines(path: settings.input), enabled: options.showProgress)
        let reader = try ValidatedReader.corpus(path: settings.input, skipBad: settings.skipBad)
        var pending: [CorpusDocument] = []
        var number = 0
        var encoded = 0
        func finishBatch() throws {
            defer { number += 1; pending.removeAll(keepingCapacity: true) }
            guard number % count == index, !FileManager.default.fileExists(atPath: layout.batch(number)) else { return }
            let vectors = job.encodeParallel(pending.map(\.encoderInput))
            let file = try AtomicOutputFile(path: layout.batch(number))
            for (document, vector) in zip(pending, vectors) {
                try file.write(VectorRecord.line(id: document.id, vector: vector, vocabulary: encoder.tokenizer.vocabulary))
            }
            try file.commit()
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
        let seconds = Date().timeIntervalSince(started)
        return (marker, .init(name: "encode", seconds: seconds, documents: encoded, documentsPerSecond: seconds > 0 ? Double(encoded) / seconds : 0))
    }

    // MARK: - Bundles

    /// Reads every document vector, computes the IDF, and writes the bundles and build.json.
    private static func finish(
        settings: BuildSettings, sources: [BuildLayout], out: BuildLayout, keepVectors: Bool, showProgress: Bool,
        stages previous: [BuildReport.Stage], started: Date
    ) throws -> (BuildManifest, BuildReport) {
        var stages = previous
        var clock = Date()
        func stage(_ name: String, documents: Int) {
            let seconds = Date().timeIntervalSince(clock)
            stages.append(.init(name: name, seconds: seconds, documents: documents, documentsPerSecond: seconds > 0 ? Double(documents) / seconds : 0))
            clock = Date()
        }
        let tokenizer = try settings.model.map { try WordPieceTokenizer.load(modelDirectory: $0) }
        var skipped = 0
        var records: [TokenVectorRecord] = []
        switch settings.weighting {
        case "model":
            let marker = try sliceMarkers(settings: settings, sources: sources)
            skipped = marker.skippedLines
            let reading = ProgressReporter(label: "read batches", total: marker.documents, enabled: showProgress)
            records.reserveCapacity(marker.documents)
            for number in 0..<marker.batches {
                guard let file = sources.map({ $0.batch(number) }).first(where: FileManager.default.fileExists(atPath:)) else {
                    throw BuilderError.files(
                        path: sources[0].batch(number),
                        reason: "missing: its slice (\(number % marker.slices) of \(marker.slices)) has not finished; run it, or name its directory")
                }
                records += try TokenVectorRecord.readAll(path: file)
                reading.update(records.count)
            }
            reading.update(records.count, final: true)
            stage("read batches", documents: records.count)
        case "bm25":
            let report = try BM25Job.vectors(
                tokenizer: tokenizer!, input: settings.input, skipBad: settings.skipBad, k1: settings.k1 ?? 0.9, b: settings.b ?? 0.4,
                showProgress: showProgress
            ) { id, vector in
                records.append(TokenVectorRecord(id: id, vector: vector.tokenWeights(tokenizer!.vocabulary)))
            }
            skipped = report.skippedLines
            stage("bm25", documents: records.count)
        default:
            let reader = try ValidatedReader(path: settings.input, skipBad: settings.skipBad, parse: TokenVectorRecord.parse, id: \.id)
            while let record = try reader.next() { records.append(record) }
            guard !records.isEmpty else { throw BuilderError.emptyCorpus(path: settings.input) }
            skipped = reader.skipped
            if skipped > 0 { warn("skipped \(skipped) bad line(s) of \(settings.input): " + reader.problems.prefix(3).joined(separator: "; ")) }
            stage("read vectors", documents: records.count)
        }

        let queryEncoder = try tokenizer.map { tokenizer in
            QueryEncoder(tokenizer: tokenizer, idf: try idfTable(settings: settings, tokenizer: tokenizer, showProgress: showProgress))
        }
        if settings.idf == "corpus" { stage("idf", documents: records.count) }
        let encoder = queryEncoder.map {
            BuildManifest.Encoder(
                weighting: settings.weighting == "bm25" ? "bm25" : "idf", document: settings.encoder,
                documentSettings: settings.weighting == "bm25" ? "bm25 k1=\(settings.k1 ?? 0.9) b=\(settings.b ?? 0.4)" : settings.encoderSettings,
                tokenizer: $0.tokenizerFingerprint, idf: $0.idfFingerprint)
        }

        let buildID = buildID(records: records, settings: settings, encoder: encoder)
        try? FileManager.default.removeItem(atPath: out.partial)
        let partial = BuildLayout(root: out.partial)
        try FileManager.default.createDirectory(atPath: partial.root, withIntermediateDirectories: true)
        if keepVectors {
            let file = try AtomicOutputFile(path: partial.vectors)
            for record in records { try file.write(record.jsonLine) }
            try file.commit()
        }
        // One quantization scale for every shard, so that their integer scores compare exactly.
        let (parts, scale) = ShardBuilder.partition(records, count: settings.shards)
        records = []

        let writing = ProgressReporter(label: "write shards", total: parts.reduce(0) { $0 + $1.count }, enabled: showProgress)
        var shards: [BuildManifest.Shard] = []
        var written = 0
        for (number, part) in parts.enumerated() {
            let id = ShardPartitioner.shardID(number)
            let sst = partial.path(BuildLayout.sst(shard: id))
            try FileManager.default.createDirectory(atPath: (sst as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let (manifest, checksum) = try ShardBuilder.writeSST(
                records: part, path: sst, shardID: id, quantizationScale: scale,
                provenance: .init(buildID: buildID, encoderFingerprint: settings.encoder, idfVersion: encoder?.idf))
            try JSONFiles.write(BundleManifest(shard: manifest, contentChecksum: checksum), to: partial.path(BuildLayout.shardManifest(shard: id)))
            shards.append(.init(id: id, documents: manifest.liveDocuments, postings: manifest.postings, file: BuildLayout.sst(shard: id), contentChecksum: checksum))
            written += part.count
            writing.update(written)
        }
        writing.update(written, final: true)
        if let queryEncoder, settings.weighting != "bm25" {
            try queryEncoder.idf.jsonData(vocabulary: queryEncoder.tokenizer.vocabulary).write(to: URL(fileURLWithPath: partial.idf))
        }
        stage("write shards", documents: written)

        let manifest = BuildManifest(
            formatVersion: BuildManifest.currentFormat, buildID: buildID, documents: written,
            postings: shards.reduce(0) { $0 + $1.postings }, quantizationScale: scale, shards: shards, encoder: encoder, skippedLines: skipped)
        // Into place: the shards and IDF first, build.json last (a build is finished exactly when it has one).
        try FileManager.default.createDirectory(atPath: out.root, withIntermediateDirectories: true)
        for (from, to) in [(partial.shards, out.shards), (partial.idf, out.idf), (partial.vectors, out.vectors)] {
            try? FileManager.default.removeItem(atPath: to)
            if FileManager.default.fileExists(atPath: from) { try FileManager.default.moveItem(atPath: from, toPath: to) }
        }
        try? FileManager.default.removeItem(atPath: out.partial)
        try JSONFiles.write(manifest, to: out.buildManifest)
        let report = BuildReport(documents: written, postings: manifest.postings, stages: stages, seconds: Date().timeIntervalSince(started))
        try JSONFiles.write(report, to: out.report)
        for source in Set(sources.map(\.root) + [out.root]) { try? FileManager.default.removeItem(atPath: BuildLayout(root: source).work) }
        return (manifest, report)
    }

    /// What the slices' markers say about the whole input, checked to agree.
    private static func sliceMarkers(settings: BuildSettings, sources: [BuildLayout]) throws -> SliceMarker {
        let paths = sources.flatMap(\.sliceMarkers)
        guard let first = paths.first else {
            throw BuilderError.files(path: sources[0].work, reason: "no finished slice here: run `sparrow build --slice I/M` for every slice first")
        }
        let markers = try paths.map { try JSONFiles.read(SliceMarker.self, from: $0) }
        for (path, marker) in zip(paths, markers) where marker.documents != markers[0].documents || marker.batches != markers[0].batches {
            throw BuilderError.files(path: path, reason: "disagrees with \(first) on the document count: not from the same input")
        }
        return markers[0]
    }

    private static func idfTable(settings: BuildSettings, tokenizer: WordPieceTokenizer, showProgress: Bool) throws -> IDFTable {
        switch settings.idf {
        case "none": return .uniform(vocabularySize: tokenizer.vocabulary.count)
        case "model": return try IDFTable.load(path: (settings.model! as NSString).appendingPathComponent("idf.json"), vocabulary: tokenizer.vocabulary)
        case "corpus":
            var counter = IDFCounter(vocabularySize: tokenizer.vocabulary.count, special: tokenizer.special.all)
            let progress = ProgressReporter(label: "idf", total: nil, enabled: showProgress)
            let reader = try ValidatedReader.corpus(path: settings.input, skipBad: settings.skipBad)
            while let document = try reader.next() {
                counter.add(tokens: tokenizer.encode(document.encoderInput))
                progress.update(counter.documents)
            }
            progress.update(counter.documents, final: true)
            return counter.table
        case let path: return try IDFTable.load(path: path, vocabulary: tokenizer.vocabulary)
        }
    }

    /// Identifies the build by its content: every document's id and weights, and how queries are encoded.
    private static func buildID(records: [TokenVectorRecord], settings: BuildSettings, encoder: BuildManifest.Encoder?) -> String {
        var hash = FNV1a()
        hash.add("shards=\(settings.shards);weighting=\(encoder?.weighting ?? "-");tokenizer=\(encoder?.tokenizer ?? "-");idf=\(encoder?.idf ?? "-");")
        for record in records {
            hash.add(record.id)
            for (token, weight) in record.vector.sorted(by: { $0.key < $1.key }) {
                hash.add(token)
                withUnsafeBytes(of: weight.bitPattern.bigEndian) { hash.add($0) }
            }
        }
        return hash.hex
    }

    private static func warn(_ message: String) {
        FileHandle.standardError.write(Data("build: \(message)\n".utf8))
    }
}
