import Foundation
import SparrowIO

/// The files of a build directory:
///
///     build.json                  written last: the build is complete exactly when it exists
///     idf.json                    the query IDF table (idf weighting)
///     vectors.jsonl.gz            every document vector (with --keep-vectors)
///     report.json                 documents, postings and seconds per stage
///     shards/<id>/shard.sst       the shard's whole content, for ingestion by a node
///     shards/<id>/manifest.json   what the SST holds (reproducible byte for byte)
///     work/settings.json          the settings the work files were made with
///     work/batches/batch-NNNNNN.bin     encoded documents, one file per finished batch (`WorkBatch`)
///     work/scratch/               sorted runs while the shards are written
///     work/slice-I-of-M.json      slice I of M has encoded all its batches (n mod M = I)
///     .partial/                   the final files while they are written
public struct BuildLayout: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    func path(_ components: String...) -> String {
        components.reduce(root) { ($0 as NSString).appendingPathComponent($1) }
    }

    public var buildManifest: String { path("build.json") }
    public var idf: String { path("idf.json") }
    public var vectors: String { path("vectors.jsonl.gz") }
    public var report: String { path("report.json") }
    public var shards: String { path("shards") }
    public var work: String { path("work") }
    var settings: String { path("work", "settings.json") }
    var batches: String { path("work", "batches") }
    var partial: String { path(".partial") }
    var scratch: String { path("work", "scratch") }

    func batch(_ number: Int) -> String { path("work", "batches", String(format: "batch-%06d.bin", number)) }

    /// The batch an unfinished batch file (`.batch-NNNNNN.bin.partial-…`) was for.
    static func batchNumber(ofPartial name: String) -> Int? {
        guard name.hasPrefix(".batch-"), name.contains(".bin.partial-") else { return nil }
        return Int(name.dropFirst(".batch-".count).prefix { $0.isNumber })
    }
    func sliceMarker(_ index: Int, of count: Int) -> String { path("work", "slice-\(index)-of-\(count).json") }

    /// The slice markers present in `work/`.
    var sliceMarkers: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: work)) ?? []).filter { $0.hasPrefix("slice-") && $0.hasSuffix(".json") }
            .sorted().map { path("work", $0) }
    }

    /// The bundle of shard `id`, relative to the build directory.
    public static func sst(shard id: String) -> String { "shards/\(id)/shard.sst" }
    public static func shardManifest(shard id: String) -> String { "shards/\(id)/manifest.json" }
}

/// What a build is made from and how; work files made with other settings are not reused.
struct BuildSettings: Codable, Equatable {
    enum Source: String, Codable {
        /// Text, encoded here.
        case corpus
        /// Pre-encoded vector lines.
        case vectors
    }

    enum Weighting: String, Codable {
        /// The sparse encoder.
        case model
        case bm25
        /// As given in a vectors file.
        case vectors
    }

    /// Where the query IDF comes from (stored as `none`, `model`, `corpus` or the file's path).
    enum IDF: Codable, Equatable {
        /// BM25: every query token weighs 1.
        case none
        /// MODEL/idf.json.
        case model
        /// Counted over the corpus while encoding.
        case corpus
        case file(String)

        init(from decoder: Decoder) throws {
            switch try decoder.singleValueContainer().decode(String.self) {
            case "none": self = .none
            case "model": self = .model
            case "corpus": self = .corpus
            case let path: self = .file(path)
            }
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .none: try container.encode("none")
            case .model: try container.encode("model")
            case .corpus: try container.encode("corpus")
            case let .file(path): try container.encode(path)
            }
        }
    }

    var source: Source
    var input: String
    var inputBytes: Int
    var weighting: Weighting
    var model: String?
    /// The document encoder's fingerprint and settings (`model` weighting).
    var encoder: String?
    var encoderSettings: String?
    var idf: IDF
    var k1: Double?
    var b: Double?
    var shards: Int
    var batchDocuments: Int
    var skipBad: Bool

    enum CodingKeys: String, CodingKey {
        case source, input, weighting, model, encoder, idf, k1, b, shards
        case inputBytes = "input_bytes", batchDocuments = "batch_documents", skipBad = "skip_bad", encoderSettings = "encoder_settings"
    }

    /// The model folder, which these settings need; an error naming `path` (the settings file) if absent.
    func requireModel(_ path: String) throws -> String {
        guard let model else { throw BuilderError.files(path: path, reason: "field 'model' is missing: weighting '\(weighting.rawValue)' and idf need it") }
        return model
    }

    /// Checks what a settings file read from another directory must hold together.
    func validate(_ path: String) throws {
        if weighting != .vectors || idf == .model || idf == .corpus { _ = try requireModel(path) }
        guard shards >= 1, batchDocuments >= 1 else { throw BuilderError.files(path: path, reason: "fields 'shards' and 'batch_documents' must be at least 1") }
        if weighting == .model, encoder == nil { throw BuilderError.files(path: path, reason: "field 'encoder' is missing for weighting 'model'") }
    }
}

/// Written by a slice when all of its batches are encoded. Batch n belongs to slice n mod M;
/// the batches themselves do not depend on M, so work from any slicing can be resumed by any other.
struct SliceMarker: Codable {
    var slice: Int
    var slices: Int
    /// Valid documents in the whole input (every slice reads all of it).
    var documents: Int
    var batches: Int
    var skippedLines: Int

    enum CodingKeys: String, CodingKey {
        case slice, slices, documents, batches
        case skippedLines = "skipped_lines"
    }
}

enum JSONFiles {
    static func write<T: Encodable>(_ value: T, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicOutputFile.write(String(decoding: try encoder.encode(value), as: UTF8.self) + "\n", to: path)
    }

    static func read<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else { throw BuilderError.files(path: path, reason: "missing") }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw BuilderError.files(path: path, reason: "unreadable (\(error))")
        }
    }
}
