import Foundation
import SparrowCore

/// Bulk-loads a shard: vectors → term dictionary, quantized postings in blocks, forward
/// index, doc table, manifest → one sorted SST file → ingested into a new RocksDB generation,
/// which becomes current by an atomic rename. A build killed at any point leaves the shard at
/// its old generation (or empty) or at the new one, never between.
///
/// Internal ids follow the byte order of the external ids, so documents with equal scores
/// rank the same way whichever shard (and however many shards) they land in.
public enum ShardBuilder {
    /// Where a shard's content comes from, recorded in its manifest.
    public struct Provenance: Sendable {
        public var buildID: String?
        public var encoderFingerprint: String?
        public var idfVersion: String?

        public init(buildID: String? = nil, encoderFingerprint: String? = nil, idfVersion: String? = nil) {
            self.buildID = buildID
            self.encoderFingerprint = encoderFingerprint
            self.idfVersion = idfVersion
        }
    }

    /// Splits `records` over `count` shards by the stable hash of their ids (`ShardPartitioner`),
    /// with the quantization scale of the whole set, which every part must be built with so
    /// that the shards' integer scores compare exactly.
    public static func partition(_ records: [TokenVectorRecord], count: Int) -> (parts: [[TokenVectorRecord]], quantizationScale: Float) {
        let largest = records.lazy.flatMap(\.vector.values).max() ?? 1
        var parts = [[TokenVectorRecord]](repeating: [], count: count)
        for record in records { parts[ShardPartitioner.shard(of: record.id, count: count)].append(record) }
        return (parts, WeightQuantizer(maxWeight: largest).scale)
    }

    /// Builds `records` into the shard directory `directory` (created if needed) and serves it.
    /// `quantizationScale` is the weight of one 8-bit step; shards of one index share it so
    /// that their integer scores compare exactly (nil: the largest weight here / 255).
    @discardableResult
    public static func build(
        records: [TokenVectorRecord], directory: String, shardID: String, provenance: Provenance = .init(),
        quantizationScale: Float? = nil
    ) throws -> ShardManifest {
        let layout = try ShardDirectory(path: directory, create: true)
        let sstPath = (directory as NSString).appendingPathComponent(".bulk-\(getpid()).sst")
        defer { unlink(sstPath) }
        let written = try writeSST(
            records: records, path: sstPath, shardID: shardID, epoch: (layout.currentManifestEpoch ?? 0) + 1,
            quantizationScale: quantizationScale, provenance: provenance, createdAt: ISO8601DateFormatter().string(from: Date()))
        let generation = try ingest(sstPath, into: layout)
        try layout.makeCurrent(generation)
        return written.manifest
    }

    /// Ingests a bundle's SST file (from `writeSST`) into a new generation of the shard in
    /// `directory` without serving it: it becomes the shard's prepared generation, opened with
    /// `Shard(directory:prepared: true)` and served from `activatePrepared`. The file is moved.
    public static func prepare(sst: String, directory: String) throws {
        let layout = try ShardDirectory(path: directory, create: true)
        try layout.markPrepared(try ingest(sst, into: layout))
    }

    /// Makes the prepared generation of the shard in `directory` its current one.
    public static func activatePrepared(directory: String) throws {
        let layout = try ShardDirectory(path: directory, create: false)
        guard let prepared = try layout.prepared() else {
            throw StorageError.invalidRequest("\(directory): no prepared generation to activate")
        }
        try layout.makeCurrent(prepared)
    }

    /// Makes the RocksDB checkpoint in `checkpoint` (moved, not copied) the current content of
    /// the shard in `directory`, replacing whatever it held.
    /// The copy must open as shard `shardID` first: one that does not open (an empty or partial
    /// file set), or holds another shard, is removed and the shard keeps serving what it had.
    public static func adopt(checkpoint: String, directory: String, shardID: String) throws {
        let layout = try ShardDirectory(path: directory, create: true)
        let generation = layout.nextGeneration()
        try FileManager.default.moveItem(atPath: checkpoint, toPath: generation.path)
        do {
            try layout.markPrepared(generation)
            let manifest = try Shard(directory: directory, cacheMegabytes: 1, prepared: true).manifest
            guard manifest.shardID == shardID else {
                throw StorageError.invalidRequest("the copy holds shard '\(manifest.shardID)', not '\(shardID)'")
            }
        } catch {
            layout.discard(generation)
            throw error
        }
        try layout.makeCurrent(generation)
    }

    private static func ingest(_ sst: String, into layout: ShardDirectory) throws -> ShardDirectory.Generation {
        let generation = layout.nextGeneration()
        try FileManager.default.createDirectory(atPath: generation.path, withIntermediateDirectories: true)
        try RocksDatabase(path: generation.path, createIfMissing: true).ingest(files: [sst])
        return generation
    }

    /// Writes a shard holding `records` as one sorted SST file at `path`, manifest included.
    /// The same arguments give the same entries, so `contentChecksum` (over every key and
    /// value) identifies the content even though RocksDB's file bytes vary between runs.
    public static func writeSST(
        records: [TokenVectorRecord], path: String, shardID: String, epoch: Int = 1, quantizationScale: Float?,
        provenance: Provenance, createdAt: String? = nil
    ) throws -> (manifest: ShardManifest, contentChecksum: UInt32) {
        let table = TokenTable()
        var documents: [(key: [UInt8], document: EncodedDocument)] = []
        documents.reserveCapacity(records.count)
        var largest: Float?
        for record in records {
            let pairs = record.vector.map { token, weight in
                var token = token
                return (token.withUTF8 { table.intern($0) }, weight)
            }
            let vector = SparseVector(pairs: pairs)
            if let top = vector.weights.max() { largest = max(largest ?? top, top) }
            documents.append((Array(record.id.utf8), EncodedDocument(id: record.id, vector: vector, fields: record.fields)))
        }
        documents.sort { $0.key.lexicographicallyPrecedes($1.key) }
        let scratch = path + ".scratch"
        let writer = try ShardSSTWriter(
            path: path,
            settings: .init(
                shardID: shardID, epoch: epoch, quantizer: quantizationScale.map(WeightQuantizer.init(scale:)) ?? WeightQuantizer(maxWeight: largest ?? 1),
                provenance: provenance, createdAt: createdAt),
            table: table.tokens, present: 0..<UInt32(table.count), scratch: scratch)
        for (_, document) in documents { try writer.add(document) }
        return try writer.finish()
    }
}
