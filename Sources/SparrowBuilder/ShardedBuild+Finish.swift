import Foundation
import SparrowCore
import SparrowEncoder
import SparrowIO
import SparrowStorage

extension ShardedBuild {
    /// Turns encoded work (or a vectors file, or BM25 over a corpus) into the bundles, in stages:
    /// read (every document, once, streamed to its shard's sorter), IDF, write (each shard's
    /// SST from its sorted documents), publish (into place, `build.json` last). Memory is bounded
    /// by `memoryBudget`, not by the corpus: the sorters and the writers spill to `work/scratch`.
    struct Finish {
        let settings: BuildSettings
        let sources: [BuildLayout]
        let out: BuildLayout
        let keepVectors: Bool
        let memoryBudget: Int
        let showProgress: Bool

        /// What the read stage leaves for the others.
        struct Read {
            var partition: Partitioner
            var tokens: [String]
            var skipped: Int
            /// Document frequencies counted while encoding (`model` weighting).
            var frequencies: IDFCounter?
        }

        func run(stages previous: [BuildReport.Stage], started: Date) throws -> (BuildManifest, BuildReport) {
            var stages = previous
            var clock = BuildReport.Clock()
            func stage(_ name: String, documents: Int) { stages.append(clock.end(name, documents: documents)) }
            try? FileManager.default.removeItem(atPath: out.partial)
            try? FileManager.default.removeItem(atPath: out.scratch)
            let partial = BuildLayout(root: out.partial)
            try FileManager.default.createDirectory(atPath: partial.root, withIntermediateDirectories: true)
            let tokenizer = try settings.model.map { try WordPieceTokenizer.load(modelDirectory: $0) }

            var read = try self.read(tokenizer: tokenizer, vectors: keepVectors ? partial.vectors : nil)
            stage("read", documents: read.partition.documents)
            let queryEncoder = try tokenizer.map { QueryEncoder(tokenizer: $0, idf: try idf(tokenizer: $0, frequencies: read.frequencies)) }
            stage("idf", documents: read.partition.documents)
            let encoder = queryEncoder.map {
                BuildManifest.Encoder(
                    weighting: settings.weighting == .bm25 ? "bm25" : "idf", document: settings.encoder,
                    documentSettings: settings.weighting == .bm25 ? "bm25 k1=\(settings.k1 ?? 0.9) b=\(settings.b ?? 0.4)" : settings.encoderSettings,
                    tokenizer: $0.tokenizerFingerprint, idf: $0.idfFingerprint)
            }
            let buildID = read.partition.buildID(
                "shards=\(settings.shards);weighting=\(encoder?.weighting ?? "-");tokenizer=\(encoder?.tokenizer ?? "-");idf=\(encoder?.idf ?? "-");",
                tokens: read.tokens)
            let shards = try write(&read, into: partial, provenance: .init(buildID: buildID, encoderFingerprint: settings.encoder, idfVersion: encoder?.idf))
            if let queryEncoder, settings.weighting != .bm25 {
                try queryEncoder.idf.jsonData(vocabulary: queryEncoder.tokenizer.vocabulary).write(to: URL(fileURLWithPath: partial.idf))
            }
            let documents = shards.reduce(0) { $0 + $1.documents }
            stage("write", documents: documents)
            let manifest = BuildManifest(
                formatVersion: BuildManifest.currentFormat, buildID: buildID, documents: documents,
                postings: shards.reduce(0) { $0 + $1.postings }, quantizationScale: read.partition.quantizer.scale, shards: shards,
                encoder: encoder, skippedLines: read.skipped)
            try publish(manifest, from: partial)
            stage("publish", documents: documents)
            let report = BuildReport(documents: documents, postings: manifest.postings, stages: stages, seconds: Date().timeIntervalSince(started))
            try JSONFiles.write(report, to: out.report)
            return (manifest, report)
        }

        // MARK: Read

        /// Streams every document, in input order, into the shards' sorters.
        private func read(tokenizer: WordPieceTokenizer?, vectors: String?) throws -> Read {
            switch settings.weighting {
            case .model: try readBatches(vocabulary: try tokenizerOf(tokenizer).vocabulary, vectors: vectors)
            case .bm25: try readBM25(tokenizer: try tokenizerOf(tokenizer), vectors: vectors)
            case .vectors: try readVectors(vectors: vectors)
            }
        }

        private func partitioner(vectors: String?, _ name: @escaping (UInt32) -> String) throws -> Partitioner {
            try Partitioner(shards: settings.shards, memoryBudget: memoryBudget / 2, scratch: out.scratch, vectors: vectors, tokenName: name)
        }

        /// The encoded work batches, in batch order, from whichever directory holds each.
        private func readBatches(vocabulary: Vocabulary, vectors: String?) throws -> Read {
            let marker = try sliceMarkers()
            let progress = ProgressReporter(label: "read", total: marker.documents, enabled: showProgress)
            var partition = try partitioner(vectors: vectors) { vocabulary.tokens[Int($0)] }
            var frequencies = IDFCounter(vocabularySize: vocabulary.count, special: [])
            for number in 0..<marker.batches {
                guard let file = sources.map({ $0.batch(number) }).first(where: FileManager.default.fileExists(atPath:)) else {
                    throw BuilderError.files(
                        path: sources[0].batch(number),
                        reason: "missing: its slice (\(number % marker.slices) of \(marker.slices)) has not finished; run it, or name its directory")
                }
                try WorkBatch.read(path: file, vocabularySize: vocabulary.count, frequencies: &frequencies) { document in
                    try partition.add(document)
                    progress.update(partition.documents)
                }
            }
            progress.update(partition.documents, final: true)
            return Read(partition: try partition.finish(), tokens: vocabulary.tokens, skipped: marker.skippedLines, frequencies: frequencies)
        }

        /// BM25 weights over the corpus (two passes of its own).
        private func readBM25(tokenizer: WordPieceTokenizer, vectors: String?) throws -> Read {
            var partition = try partitioner(vectors: vectors) { tokenizer.vocabulary.tokens[Int($0)] }
            let report = try BM25Job.vectors(
                tokenizer: tokenizer, input: settings.input, skipBad: settings.skipBad, k1: settings.k1 ?? 0.9, b: settings.b ?? 0.4,
                showProgress: showProgress
            ) { id, vector in
                try partition.add(EncodedDocument(id: id, vector: vector))
            }
            return Read(partition: try partition.finish(), tokens: tokenizer.vocabulary.tokens, skipped: report.skippedLines)
        }

        /// A vectors file, its tokens numbered in the order first seen.
        private func readVectors(vectors: String?) throws -> Read {
            let progress = ProgressReporter(label: "read", total: nil, enabled: showProgress)
            let table = TokenTable()
            var partition = try partitioner(vectors: vectors) { table.tokens[Int($0)] }
            let reader = try ValidatedReader(path: settings.input, skipBad: settings.skipBad, parse: { line, path, number in
                try EncodedDocument.parse(line, path: path, lineNumber: number, tokens: table)
            }, id: \.id)
            while let document = try reader.next() {
                try partition.add(document)
                progress.update(partition.documents)
            }
            progress.update(partition.documents, final: true)
            guard partition.documents > 0 else { throw BuilderError.emptyCorpus(path: settings.input) }
            if reader.skipped > 0 { warn("skipped \(reader.skipped) bad line(s) of \(settings.input): " + reader.problems.prefix(3).joined(separator: "; ")) }
            return Read(partition: try partition.finish(), tokens: table.tokens, skipped: reader.skipped)
        }

        private func tokenizerOf(_ tokenizer: WordPieceTokenizer?) throws -> WordPieceTokenizer {
            guard let tokenizer else {
                throw BuilderError.files(path: sources[0].settings, reason: "field 'model' is missing: weighting '\(settings.weighting.rawValue)' needs it")
            }
            return tokenizer
        }

        /// What the slices' markers say about the whole input, checked to agree.
        private func sliceMarkers() throws -> SliceMarker {
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

        // MARK: IDF

        private func idf(tokenizer: WordPieceTokenizer, frequencies: IDFCounter?) throws -> IDFTable {
            switch settings.idf {
            case .none: return .uniform(vocabularySize: tokenizer.vocabulary.count)
            case .model: return try IDFTable.load(path: (try settings.requireModel(sources[0].settings) as NSString).appendingPathComponent("idf.json"), vocabulary: tokenizer.vocabulary)
            case let .file(path): return try IDFTable.load(path: path, vocabulary: tokenizer.vocabulary)
            case .corpus:
                guard let frequencies else { throw BuilderError.files(path: sources[0].settings, reason: "idf 'corpus' needs weighting 'model'") }
                return frequencies.table   // the encoder's counts leave special tokens out
            }
        }

        // MARK: Write

        /// Writes each shard's SST and manifest into `partial`, one shard at a time.
        private func write(_ read: inout Read, into partial: BuildLayout, provenance: ShardBuilder.Provenance) throws -> [BuildManifest.Shard] {
            let progress = ProgressReporter(label: "write shards", total: read.partition.documents, enabled: showProgress)
            var shards: [BuildManifest.Shard] = []
            var written = 0
            for number in 0..<settings.shards {
                let id = ShardPartitioner.shardID(number)
                let sst = partial.path(BuildLayout.sst(shard: id))
                try FileManager.default.createDirectory(atPath: (sst as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let writer = try ShardSSTWriter(
                    path: sst,
                    settings: .init(shardID: id, quantizer: read.partition.quantizer, provenance: provenance, postingBudget: memoryBudget / 2 / 8),
                    table: read.tokens, present: read.partition.present(shard: number),
                    scratch: (out.scratch as NSString).appendingPathComponent("write-\(id)"))
                let documents = try read.partition.sorted(shard: number)
                while let document = try documents.next() {
                    try writer.add(document)
                    written += 1
                    progress.update(written)
                }
                let (manifest, checksum) = try writer.finish()
                try JSONFiles.write(BundleManifest(shard: manifest, contentChecksum: checksum), to: partial.path(BuildLayout.shardManifest(shard: id)))
                shards.append(.init(id: id, documents: manifest.liveDocuments, postings: manifest.postings, file: BuildLayout.sst(shard: id), contentChecksum: checksum))
            }
            progress.update(written, final: true)
            return shards
        }

        // MARK: Publish

        /// Into place: the shards and IDF first, build.json last (a build is finished exactly when it has one).
        private func publish(_ manifest: BuildManifest, from partial: BuildLayout) throws {
            try FileManager.default.createDirectory(atPath: out.root, withIntermediateDirectories: true)
            for (from, to) in [(partial.shards, out.shards), (partial.idf, out.idf), (partial.vectors, out.vectors)] {
                try? FileManager.default.removeItem(atPath: to)
                if FileManager.default.fileExists(atPath: from) { try FileManager.default.moveItem(atPath: from, toPath: to) }
            }
            try? FileManager.default.removeItem(atPath: out.partial)
            try JSONFiles.write(manifest, to: out.buildManifest)
            for source in Set(sources.map(\.root) + [out.root]) { try? FileManager.default.removeItem(atPath: BuildLayout(root: source).work) }
        }
    }
}
