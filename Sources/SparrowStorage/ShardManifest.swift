import Foundation
import SparrowCore

/// What a shard is, stored under key `M` as JSON. Written in the same SST as the data it
/// describes, so a shard has a manifest exactly when its whole bulk load is present.
public struct ShardManifest: Codable, Equatable, Sendable {
    /// 2: posting blocks in impact tiers and the approximate-mode calibration
    /// (`PostingBlockCodec`, `approximate`); 1 is still read (no approximate mode: served exactly).
    public static let currentFormat = 2
    static let readableFormats = 1...2

    public var formatVersion: Int
    public var shardID: String
    /// Bumped by every bulk load, online write and compaction.
    public var epoch: Int
    /// Internal ids handed out so far (live, deleted and compacted away).
    public var nextDocument: UInt32
    public var liveDocuments: Int
    public var postings: Int
    public var terms: Int
    /// Weight of one 8-bit code.
    public var quantizationScale: Float
    public var encoderFingerprint: String?
    public var idfVersion: String?
    /// The offline build (`sparrow build`) this shard's bulk load came from, if any.
    public var buildID: String?
    /// CRC-32C over the bulk-loaded posting blocks, in key order.
    public var postingsChecksum: UInt32
    /// Sequence of the last online write in the change log (nil: none since the bulk load).
    public var lastChange: UInt64?
    /// The id of the write the last change came from (nil: 0, an unsequenced write).
    public var lastWrite: UInt64?
    /// The log holds the writes after this sequence (compaction trims it; nil: 0).
    public var logStart: UInt64?
    /// When the shard was bulk-loaded; nil in build bundles, which must be reproducible byte for byte.
    public var createdAt: String?
    /// Settings calibrated for target recalls when the shard was built (nil: format 1, or a
    /// shard built without it).
    public var approximate: ApproximateCalibration?

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", shardID = "shard_id", epoch
        case nextDocument = "next_document", liveDocuments = "live_documents", postings, terms
        case quantizationScale = "quantization_scale", encoderFingerprint = "encoder_fingerprint"
        case idfVersion = "idf_version", postingsChecksum = "postings_checksum", createdAt = "created_at", buildID = "build_id"
        case lastChange = "last_change", lastWrite = "last_write", logStart = "log_start", approximate
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self))
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> ShardManifest {
        let manifest: ShardManifest
        do {
            manifest = try JSONDecoder().decode(ShardManifest.self, from: Data(bytes))
        } catch {
            throw StorageError.manifest(path: path, reason: "unreadable (\(error))")
        }
        guard readableFormats.contains(manifest.formatVersion) else {
            throw StorageError.manifest(
                path: path, reason: "format version \(manifest.formatVersion); this Sparrow reads versions \(readableFormats.lowerBound) to \(readableFormats.upperBound)")
        }
        return manifest
    }
}
