import Foundation
import SparrowCore

/// Bulk-loads a shard: vectors → term dictionary, quantized postings in blocks, forward
/// index, doc table, manifest → one sorted SST file → ingested into a new RocksDB generation,
/// which becomes current by an atomic rename. A build killed at any point leaves the shard at
/// its old generation (or empty) or at the new one, never between.
public enum ShardBuilder {
    /// Builds `records` into the shard directory `directory` (created if needed).
    /// `quantizationScale` is the weight of one 8-bit step; shards of one index share it so
    /// that their integer scores compare exactly (nil: the largest weight here / 255).
    @discardableResult
    public static func build(
        records: [TokenVectorRecord], directory: String, shardID: String, encoderFingerprint: String? = nil,
        quantizationScale: Float? = nil
    ) throws -> ShardManifest {
        if let quantizationScale, !(quantizationScale > 0 && quantizationScale.isFinite) {
            throw StorageError.invalidRequest("quantization scale must be a positive number, not \(quantizationScale)")
        }
        var seen = Set<String>()
        for record in records where !seen.insert(record.id).inserted {
            throw StorageError.invalidRequest("document id '\(record.id)' appears more than once")
        }
        let tokens = Set(records.flatMap { $0.vector.keys }).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let termOf = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($0.element, UInt32($0.offset)) })
        let vectors = records.map { record in SparseVector(pairs: record.vector.map { (termOf[$0.key]!, $0.value) }) }
        let index = InvertedIndex(vectors: vectors, quantizer: quantizationScale.map(WeightQuantizer.init(scale:)))

        let layout = try ShardDirectory(path: directory, create: true)
        let generation = layout.nextGeneration()
        try FileManager.default.createDirectory(atPath: generation.path, withIntermediateDirectories: true)
        let sstPath = (directory as NSString).appendingPathComponent(".bulk-\(getpid()).sst")
        defer { unlink(sstPath) }
        let database = try RocksDatabase(path: generation.path, createIfMissing: true)
        let writer = try database.sstWriter(path: sstPath)

        // Keys must reach the SST in ascending byte order: tags E < F < G < I < M < P < T < V < W.
        for (id, doc) in records.enumerated().map({ ($0.element.id, UInt32($0.offset)) })
            .sorted(by: { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }) {
            var value: [UInt8] = []
            ByteCodec.appendBigEndian(doc, to: &value)
            try writer.put(ShardKeys.key("E", id), value)
        }
        for (doc, vector) in vectors.enumerated() {
            let codes = vector.weights.map(index.quantizer.quantize)
            try writer.put(ShardKeys.key("F", UInt32(doc)), ForwardVectorCodec.encode(terms: vector.terms, codes: codes))
        }
        let fieldKeys = records.enumerated().flatMap { doc, record in
            (record.fields ?? [:]).map { ShardKeys.fieldKey(field: $0.key, value: $0.value, doc: UInt32(doc)) }
        }.sorted { $0.lexicographicallyPrecedes($1) }
        for key in fieldKeys { try writer.put(key, []) }
        for (doc, record) in records.enumerated() {
            try writer.put(ShardKeys.key("I", UInt32(doc)), Array(try JSONEncoder().encode(DocumentRecord(id: record.id, fields: record.fields))))
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
            formatVersion: ShardManifest.currentFormat, shardID: shardID, epoch: (layout.currentManifestEpoch ?? 0) + 1,
            nextDocument: UInt32(records.count), liveDocuments: records.count, postings: index.postingCount,
            terms: tokens.count, quantizationScale: index.quantizer.scale, encoderFingerprint: encoderFingerprint,
            idfVersion: nil, postingsChecksum: CRC32C.checksum(checksumInput),
            createdAt: ISO8601DateFormatter().string(from: Date()))
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
        try database.ingest(files: [sstPath])
        try layout.makeCurrent(generation)
        return manifest
    }
}
