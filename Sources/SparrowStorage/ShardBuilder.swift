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
        records unsorted: [TokenVectorRecord], path: String, shardID: String, epoch: Int = 1, quantizationScale: Float?,
        provenance: Provenance, createdAt: String? = nil
    ) throws -> (manifest: ShardManifest, contentChecksum: UInt32) {
        if let quantizationScale, !(quantizationScale > 0 && quantizationScale.isFinite) {
            throw StorageError.invalidRequest("quantization scale must be a positive number, not \(quantizationScale)")
        }
        let keyed = unsorted.map { (key: Array($0.id.utf8), record: $0) }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        for (previous, next) in zip(keyed, keyed.dropFirst()) where previous.key == next.key {
            throw StorageError.invalidRequest("document id '\(next.record.id)' appears more than once")
        }
        let records = keyed.map(\.record)
        let tokens = Set(records.flatMap { $0.vector.keys }).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let termOf = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($0.element, UInt32($0.offset)) })
        let vectors = records.map { record in SparseVector(pairs: record.vector.map { (termOf[$0.key]!, $0.value) }) }
        let index = InvertedIndex(vectors: vectors, quantizer: quantizationScale.map(WeightQuantizer.init(scale:)))
        let writer = try SSTFileWriter(path: path)

        // Keys must reach the SST in ascending byte order: tags E < F < G < I < M < P < T < V < W.
        for (doc, record) in records.enumerated() {
            var value: [UInt8] = []
            ByteCodec.appendBigEndian(UInt32(doc), to: &value)
            try writer.put(ShardKeys.key("E", record.id), value)
        }
        for (doc, vector) in vectors.enumerated() {
            let codes = vector.weights.map(index.quantizer.quantize)
            try writer.put(ShardKeys.key("F", UInt32(doc)), ForwardVectorCodec.encode(terms: vector.terms, codes: codes))
        }
        let fieldKeys = records.enumerated().flatMap { doc, record in
            (record.fields ?? [:]).map { ShardKeys.fieldKey(field: $0.key, value: $0.value, doc: UInt32(doc)) }
        }.sorted { $0.lexicographicallyPrecedes($1) }
        for key in fieldKeys { try writer.put(key, []) }
        let json = JSONEncoder()
        json.outputFormatting = [.sortedKeys]
        for (doc, record) in records.enumerated() {
            try writer.put(ShardKeys.key("I", UInt32(doc)), Array(try json.encode(DocumentRecord(id: record.id, fields: record.fields))))
        }
        var blocks: [(key: [UInt8], value: [UInt8])] = []
        var checksumInput: [UInt8] = []
        for term in index.lists.keys.sorted() {
            let list = index.lists[term]!
            for (number, start) in stride(from: 0, to: list.count, by: PostingList.blockSize).enumerated() {
                let end = min(start + PostingList.blockSize, list.count)
                let block = PostingBlockCodec.encode(docs: list.docs[start..<end], weights: list.weights[start..<end])
                blocks.append((ShardKeys.key("P", term, UInt32(number)), block))
                checksumInput.append(contentsOf: block.suffix(4))
            }
        }
        let manifest = ShardManifest(
            formatVersion: ShardManifest.currentFormat, shardID: shardID, epoch: epoch,
            nextDocument: UInt32(records.count), liveDocuments: records.count, postings: index.postingCount,
            terms: tokens.count, quantizationScale: index.quantizer.scale, encoderFingerprint: provenance.encoderFingerprint,
            idfVersion: provenance.idfVersion, buildID: provenance.buildID, postingsChecksum: CRC32C.checksum(checksumInput),
            createdAt: createdAt)
        try writer.put(ShardKeys.manifest, try manifest.encoded())
        for block in blocks { try writer.put(block.key, block.value) }
        for term in index.lists.keys.sorted() {
            let list = index.lists[term]!
            let header = TermHeader(documentFrequency: UInt32(list.count), maxWeight: list.maxWeight, blocks: UInt32(list.blockLastDoc.count))
            try writer.put(ShardKeys.key("T", term), header.encoded())
        }
        for (term, token) in tokens.enumerated() { try writer.put(ShardKeys.key("V", UInt32(term)), Array(token.utf8)) }
        for (term, token) in tokens.enumerated() {
            var value: [UInt8] = []
            ByteCodec.appendBigEndian(UInt32(term), to: &value)
            try writer.put(ShardKeys.key("W", token), value)
        }
        try writer.finish()
        return (manifest, writer.contentChecksum)
    }
}
