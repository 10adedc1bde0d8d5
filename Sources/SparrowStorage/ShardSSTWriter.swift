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
        /// Documents sampled as queries to calibrate the approximate mode (0: none).
        public var calibrationQueries: Int

        public init(
            shardID: String, epoch: Int = 1, quantizer: WeightQuantizer, provenance: ShardBuilder.Provenance, createdAt: String? = nil,
            postingBudget: Int = 32 << 20, calibrationQueries: Int = 128
        ) {
            self.shardID = shardID
            self.epoch = epoch
            self.quantizer = quantizer
            self.provenance = provenance
            self.createdAt = createdAt
            self.postingBudget = postingBudget
            self.calibrationQueries = calibrationQueries
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
    /// Documents kept to calibrate with (a uniform sample: reservoir sampling, seeded by the
    /// shard id so that equal input gives an equal shard).
    private var samples: [(terms: [UInt32], codes: [UInt8])] = []
    private var random: SplitMix64
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
        var seed = FNV1a()
        seed.add(settings.shardID)
        random = SplitMix64(seed: seed.value)
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
        sample(terms: terms, codes: codes, index: Int(doc))
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
        var ranges = [Range<Int>](repeating: 0..<0, count: tokens.count)
        try postings.finish { term, docs, codes in
            let (encoded, header) = PostingBlockCodec.encodeTerm(docs: docs, codes: codes)
            let start = blocks.size
            for block in encoded {
                try blocks.append(block)
                checksumInput.append(contentsOf: block.suffix(4))
            }
            ranges[Int(term)] = start..<blocks.size
            headers.append((term, header))
            postingCount += docs.count
        }
        try blocks.commit()
        let approximate = try calibrate(headers: headers, blocks: blocks.path, ranges: ranges, postings: postingCount)
        let manifest = ShardManifest(
            formatVersion: ShardManifest.currentFormat, shardID: settings.shardID, epoch: settings.epoch,
            nextDocument: documents, liveDocuments: Int(documents), postings: postingCount,
            terms: tokens.count, quantizationScale: settings.quantizer.scale, encoderFingerprint: settings.provenance.encoderFingerprint,
            idfVersion: settings.provenance.idfVersion, buildID: settings.provenance.buildID, postingsChecksum: CRC32C.checksum(checksumInput),
            createdAt: settings.createdAt, approximate: approximate)
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

    private func sample(terms: [UInt32], codes: [UInt8], index: Int) {
        guard settings.calibrationQueries > 0, !terms.isEmpty else { return }
        if samples.count < settings.calibrationQueries {
            samples.append((terms, codes))
        } else {
            let slot = Int(random.next() % UInt64(index + 1))
            if slot < samples.count { samples[slot] = (terms, codes) }
        }
    }

    /// Calibrates the approximate mode on queries made from the sampled documents, reading
    /// each query's lists back from the encoded blocks (memory: one query's postings).
    private func calibrate(headers: [(term: UInt32, header: TermHeader)], blocks path: String, ranges: [Range<Int>], postings: Int) throws -> ApproximateCalibration? {
        guard !samples.isEmpty, documents > 0 else { return nil }
        var headerOf: [UInt32: TermHeader] = [:]
        for (term, header) in headers { headerOf[term] = header }
        var calibrator = Calibrator(postingsPerDocument: Double(postings) / Double(documents))
        for (number, sample) in samples.enumerated() {
            // Query lengths 5 to 32, as inference-free queries of a sentence or two have.
            let vector = Calibrator.pseudoQuery(
                terms: sample.terms, codes: sample.codes, length: 5 + number * 7 % 28,
                documentFrequency: { Int(headerOf[$0]?.documentFrequency ?? 0) }, documents: Int(documents))
            var lists: [UInt32: PostingList] = [:]
            for term in vector.terms {
                guard let header = headerOf[term] else { continue }
                lists[term] = try PostingBlockCodec.decodeTerm(RecordFile.records(path: path, range: ranges[Int(term)]), header: header)
            }
            let index = InvertedIndex(lists: lists, documentCount: Int(documents), quantizer: settings.quantizer)
            calibrator.measure(QuantizedQuery(vector, documents: settings.quantizer), in: index)
        }
        samples = []
        return calibrator.finish()
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
