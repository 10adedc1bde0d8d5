import Foundation
import SparrowCore

/// Writes one shard as a sorted SST file from its documents in id byte order, in memory that
/// does not grow with the shard: document entries go straight to the SST or to scratch files,
/// postings through `PostingRuns`. The one writer of shard content: `ShardBuilder.writeSST`
/// and `sparrow build` both end here, so equal input gives equal entries (`contentChecksum`).
///
/// Term ids are the shard's own: its tokens in UTF-8 byte order. Document ids follow the order
/// of `add` calls, which must be ascending external ids (bytes), with no repeats.
public final class ShardSSTWriter {
    public struct Settings: Sendable {
        public var shardID: String
        public var epoch: Int
        public var quantizer: WeightQuantizer
        public var provenance: ShardBuilder.Provenance
        public var createdAt: String?
        /// Postings held in memory before a run is spilled (about 5 bytes each).
        public var postingBudget: Int

        public init(
            shardID: String, epoch: Int = 1, quantizer: WeightQuantizer, provenance: ShardBuilder.Provenance, createdAt: String? = nil,
            postingBudget: Int = 32 << 20
        ) {
            self.shardID = shardID
            self.epoch = epoch
            self.quantizer = quantizer
            self.provenance = provenance
            self.createdAt = createdAt
            self.postingBudget = postingBudget
        }
    }

    private let settings: Settings
    private let writer: SSTFileWriter
    private let scratch: String
    /// The shard's tokens, in term-id order.
    private let tokens: [String]
    /// Build-wide token id → the shard's term id (`UInt32.max`: not in this shard).
    private let termOf: [UInt32]
    private let forward: RecordFile.Writer
    private let records: RecordFile.Writer
    private var fieldKeys: [[UInt8]] = []
    private var postings: PostingRuns
    private var documents: UInt32 = 0
    private var lastID: [UInt8]?
    private let json: JSONEncoder = {
        let json = JSONEncoder()
        json.outputFormatting = [.sortedKeys]
        return json
    }()

    /// `table` names the build-wide token ids the documents use; `present` lists those that occur
    /// in this shard (each becomes a term). `scratch` is an empty directory for the writer's runs.
    public init(path: String, settings: Settings, table: [String], present: some Sequence<UInt32>, scratch: String) throws {
        guard settings.quantizer.scale > 0, settings.quantizer.scale.isFinite else {
            throw StorageError.invalidRequest("quantization scale must be a positive number, not \(settings.quantizer.scale)")
        }
        self.settings = settings
        self.scratch = scratch
        let ordered = Array(Set(present)).sorted { Array(table[Int($0)].utf8).lexicographicallyPrecedes(Array(table[Int($1)].utf8)) }
        var termOf = [UInt32](repeating: .max, count: table.count)
        for (term, id) in ordered.enumerated() { termOf[Int(id)] = UInt32(term) }
        self.termOf = termOf
        tokens = ordered.map { table[Int($0)] }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        forward = try RecordFile.Writer(path: (scratch as NSString).appendingPathComponent("forward"))
        records = try RecordFile.Writer(path: (scratch as NSString).appendingPathComponent("documents"))
        postings = PostingRuns(terms: ordered.count, budget: settings.postingBudget, scratch: scratch)
        writer = try SSTFileWriter(path: path)
    }

    /// Adds the next document: its id above every id before, its terms build-wide ids in `present`.
    public func add(_ document: EncodedDocument) throws {
        let key = Array(document.id.utf8)
        if let lastID {
            guard lastID.lexicographicallyPrecedes(key) else {
                throw StorageError.invalidRequest(lastID == key
                    ? "document id '\(document.id)' appears more than once"
                    : "documents must come in id order: '\(document.id)' after '\(String(decoding: lastID, as: UTF8.self))'")
            }
        }
        lastID = key
        let doc = documents
        documents += 1
        var value: [UInt8] = []
        ByteCodec.appendBigEndian(doc, to: &value)
        try writer.put(ShardKeys.key("E", document.id), value)

        var pairs: [(UInt32, UInt8)] = []
        pairs.reserveCapacity(document.vector.count)
        for (token, weight) in document.vector.entries {
            guard Int(token) < termOf.count, termOf[Int(token)] != .max else {
                throw StorageError.invalidRequest("document '\(document.id)' uses token \(token), not among the shard's tokens")
            }
            pairs.append((termOf[Int(token)], settings.quantizer.quantize(weight)))
        }
        pairs.sort { $0.0 < $1.0 }
        let terms = pairs.map(\.0)
        let codes = pairs.map(\.1)
        try forward.append(ForwardVectorCodec.encode(terms: terms, codes: codes))
        try postings.add(doc: doc, terms: terms, codes: codes)
        for (field, text) in document.fields ?? [:] { fieldKeys.append(ShardKeys.fieldKey(field: field, value: text, doc: doc)) }
        try records.append(Array(try json.encode(DocumentRecord(id: document.id, fields: document.fields))))
    }

    /// Writes the rest of the SST and its manifest.
    public func finish() throws -> (manifest: ShardManifest, contentChecksum: UInt32) {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // Keys must reach the SST in ascending byte order: tags E < F < G < I < M < P < T < V < W.
        try forward.commit()
        try replay(forward.path) { doc, value in try writer.put(ShardKeys.key("F", doc), value) }
        fieldKeys.sort { $0.lexicographicallyPrecedes($1) }
        for key in fieldKeys { try writer.put(key, []) }
        fieldKeys = []
        try records.commit()
        try replay(records.path) { doc, value in try writer.put(ShardKeys.key("I", doc), value) }

        // The manifest (before the postings) carries their checksum: encode the blocks first.
        let blocks = try RecordFile.Writer(path: (scratch as NSString).appendingPathComponent("blocks"))
        var headers: [(term: UInt32, header: TermHeader)] = []
        var checksumInput: [UInt8] = []
        var postingCount = 0
        try postings.finish { term, docs, codes in
            var number: UInt32 = 0
            for start in stride(from: 0, to: docs.count, by: PostingList.blockSize) {
                let end = min(start + PostingList.blockSize, docs.count)
                let block = PostingBlockCodec.encode(docs: docs[start..<end], weights: codes[start..<end])
                try blocks.append(block)
                checksumInput.append(contentsOf: block.suffix(4))
                number += 1
            }
            headers.append((term, TermHeader(documentFrequency: UInt32(docs.count), maxWeight: codes.max() ?? 0, blocks: number)))
            postingCount += docs.count
        }
        try blocks.commit()
        let manifest = ShardManifest(
            formatVersion: ShardManifest.currentFormat, shardID: settings.shardID, epoch: settings.epoch,
            nextDocument: documents, liveDocuments: Int(documents), postings: postingCount,
            terms: tokens.count, quantizationScale: settings.quantizer.scale, encoderFingerprint: settings.provenance.encoderFingerprint,
            idfVersion: settings.provenance.idfVersion, buildID: settings.provenance.buildID, postingsChecksum: CRC32C.checksum(checksumInput),
            createdAt: settings.createdAt)
        try writer.put(ShardKeys.manifest, try manifest.encoded())
        let reader = try RecordFile.Reader(path: blocks.path)
        for (term, header) in headers {
            for number in 0..<header.blocks {
                guard let block = try reader.next() else { throw CorruptData("\(blocks.path): fewer blocks than written") }
                try writer.put(ShardKeys.key("P", term, number), Array(block))
            }
        }
        for (term, header) in headers { try writer.put(ShardKeys.key("T", term), header.encoded()) }
        for (term, token) in tokens.enumerated() { try writer.put(ShardKeys.key("V", UInt32(term)), Array(token.utf8)) }
        for (term, token) in tokens.enumerated() {   // in byte order already
            var value: [UInt8] = []
            ByteCodec.appendBigEndian(UInt32(term), to: &value)
            try writer.put(ShardKeys.key("W", token), value)
        }
        try writer.finish()
        return (manifest, writer.contentChecksum)
    }

    /// Puts each record of a scratch file, numbered from 0.
    private func replay(_ path: String, _ put: (UInt32, [UInt8]) throws -> Void) throws {
        let reader = try RecordFile.Reader(path: path)
        var doc: UInt32 = 0
        while let value = try reader.next() {
            try put(doc, Array(value))
            doc += 1
        }
        unlink(path)
    }
}
