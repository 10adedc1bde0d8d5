import Foundation
import SparrowStorage

/// `build.json`: what a finished build holds, for `sparrow ctl load` and the coordinator's
/// checks. Reproducible: the same input and settings give the same bytes.
public struct BuildManifest: Codable, Equatable, Sendable {
    public static let currentFormat = 1

    public struct Shard: Codable, Equatable, Sendable {
        public var id: String
        public var documents: Int
        public var postings: Int
        /// The SST file, relative to the build directory.
        public var file: String
        /// CRC-32C over the SST's entries (`SSTFileWriter.contentChecksum`).
        public var contentChecksum: UInt32

        enum CodingKeys: String, CodingKey {
            case id, documents, postings, file
            case contentChecksum = "content_checksum"
        }
    }

    /// What queries must be encoded with to match the documents.
    public struct Encoder: Codable, Equatable, Sendable {
        enum CodingKeys: String, CodingKey {
            case weighting, document, tokenizer, idf
            case documentSettings = "document_settings"
        }

        /// `idf` (tokens weighted by the IDF table) or `bm25` (every token 1).
        public var weighting: String
        /// The document encoder (model weights and settings); nil for BM25 and given vectors.
        public var document: String?
        /// How document weights were made: the encoder's activation and pruning, or BM25's k1 and b.
        public var documentSettings: String?
        /// `QueryEncoder.tokenizerFingerprint` and `idfFingerprint`.
        public var tokenizer: String
        public var idf: String
    }

    public var formatVersion: Int
    public var buildID: String
    public var documents: Int
    public var postings: Int
    public var quantizationScale: Float
    public var shards: [Shard]
    /// nil when the build had no model or tokenizer: only vector queries can search it.
    public var encoder: Encoder?
    public var skippedLines: Int

    enum CodingKeys: String, CodingKey {
        case documents, postings, shards, encoder
        case formatVersion = "format_version", buildID = "build_id", quantizationScale = "quantization_scale"
        case skippedLines = "skipped_lines"
    }

    /// Reads `BUILD_DIR/build.json`; errors say when the build is unfinished.
    public static func load(buildDirectory: String) throws -> BuildManifest {
        let path = BuildLayout(root: buildDirectory).buildManifest
        guard FileManager.default.fileExists(atPath: path) else {
            throw BuilderError.files(path: path, reason: "missing: \(buildDirectory) is not a finished build (run or resume `sparrow build`)")
        }
        let manifest = try JSONFiles.read(BuildManifest.self, from: path)
        guard manifest.formatVersion == currentFormat else {
            throw BuilderError.files(path: path, reason: "format version \(manifest.formatVersion); this Sparrow reads \(currentFormat)")
        }
        return manifest
    }
}

/// `shards/<id>/manifest.json`: the shard manifest stored inside the SST, beside it.
struct BundleManifest: Codable, Equatable {
    var shard: ShardManifest
    var contentChecksum: UInt32

    enum CodingKeys: String, CodingKey {
        case shard
        case contentChecksum = "content_checksum"
    }
}

/// `report.json`: what the build did and how long each stage took.
public struct BuildReport: Codable, Sendable {
    public struct Stage: Codable, Sendable {
        public var name: String
        public var seconds: Double
        public var documents: Int
        public var documentsPerSecond: Double
        /// The process's peak resident memory during the stage (Linux; nil elsewhere).
        public var peakResidentBytes: Int?

        enum CodingKeys: String, CodingKey {
            case name, seconds, documents
            case documentsPerSecond = "documents_per_second"
            case peakResidentBytes = "peak_resident_bytes"
        }
    }

    /// Times consecutive stages and the peak memory of each.
    struct Clock {
        private var start = Date()

        init() { Self.resetPeak() }

        /// Ends the stage that began at the last `end` (or at `init`) and starts the next.
        mutating func end(_ name: String, documents: Int) -> Stage {
            let seconds = Date().timeIntervalSince(start)
            let stage = Stage(
                name: name, seconds: seconds, documents: documents, documentsPerSecond: seconds > 0 ? Double(documents) / seconds : 0,
                peakResidentBytes: Self.peak())
            Self.resetPeak()
            start = Date()
            return stage
        }

        /// VmHWM of /proc/self/status.
        private static func peak() -> Int? {
            guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
                  let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
            return kilobytes << 10
        }

        /// Writing 5 to clear_refs starts VmHWM again from the current resident size.
        private static func resetPeak() {
            if let file = fopen("/proc/self/clear_refs", "w") {
                fputs("5", file)
                fclose(file)
            }
        }
    }

    public var documents: Int
    public var postings: Int
    public var stages: [Stage]
    public var seconds: Double

    public var summary: String {
        let parts = stages.map {
            String(format: "%@ %.1f s (%.0f docs/s, peak %.0f MB)", $0.name, $0.seconds, $0.documentsPerSecond, Double($0.peakResidentBytes ?? 0) / 1e6)
        }
        return String(format: "%d documents, %d postings in %.1f s (%.0f docs/s end to end): ", documents, postings, seconds,
                      seconds > 0 ? Double(documents) / seconds : 0) + parts.joined(separator: ", ")
    }
}
