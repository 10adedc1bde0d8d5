import Foundation
import SparrowCore

/// A shard's answer: the hits, and the approximate settings that produced them (nil: exact).
public struct ShardAnswer: Sendable, Equatable {
    public var hits: [Hit]
    public var approximate: ApproximateSearch.Settings?
    /// What the approximate search did (nil when exact).
    public var work: ApproximateSearch.Work?
}

/// Counts and bytes of an open shard.
public struct ShardStats: Sendable, Equatable {
    public var liveDocuments: Int
    public var postings: Int
    public var terms: Int
    public var bytesOnDisk: Int
    public var residentBytes: Int
    public var blockCacheBytes: Int
}

/// An open shard: its RocksDB database plus the decoded postings that queries run on.
/// Searches run concurrently; writes are serialised and durable before they return.
public final class Shard: @unchecked Sendable {
    /// What queries read; replaced wholesale by writes (copy on write).
    struct State {
        var manifest: ShardManifest
        var quantizer: WeightQuantizer
        var termOf: [String: UInt32]
        var tokens: [UInt32: String]
        /// Bulk-loaded postings (blocks on disk).
        var main: InvertedIndex
        /// The bulk-loaded documents' vectors, for the approximate mode (nil: the shard has no
        /// calibration, format 1, and is searched exactly).
        var forward: ForwardIndex?
        /// Postings of documents written online since the last compaction.
        var delta: InvertedIndex
        var deltaPostings: [UInt32: [(doc: UInt32, code: UInt8)]]
        var externalIDs: [UInt32: String]
        var live: DocumentFilter
    }

    public let directory: String
    let database: RocksDatabase
    private let lock = NSLock()
    private var _state: State
    var state: State {
        get { lock.withLock { _state } }
        set { lock.withLock { _state = newValue } }
    }
    let writeLock = NSLock()
    let algorithm: any SearchAlgorithm
    let approximateSearch = ApproximateSearch()

    /// Opens the shard in `directory` (its current generation, or with `prepared` the one a
    /// build bundle was ingested into and not yet activated), checking its manifest and every
    /// stored block.
    public init(directory: String, cacheMegabytes: Int = 64, algorithm: any SearchAlgorithm = DenseTermAtATime(), prepared: Bool = false) throws {
        self.directory = directory
        self.algorithm = algorithm
        let layout = try ShardDirectory(path: directory, create: false)
        guard let generation = try prepared ? layout.prepared() : layout.current() else {
            throw StorageError.manifest(
                path: directory,
                reason: prepared ? "no PREPARED file: no build bundle waits for activation"
                    : "no CURRENT file: the shard was never built (or its first bulk load did not finish)")
        }
        database = try RocksDatabase(path: generation.path, createIfMissing: false, cacheBytes: cacheMegabytes << 20)
        _state = try ShardLoader(database: database).load()
    }

    /// The manifest as of the last write.
    public var manifest: ShardManifest { state.manifest }

    public var stats: ShardStats {
        let s = state
        return ShardStats(
            liveDocuments: s.manifest.liveDocuments, postings: s.main.postingCount + s.delta.postingCount,
            terms: s.termOf.count, bytesOnDisk: database.sstBytes,
            residentBytes: s.main.residentBytes + s.delta.residentBytes + (s.forward?.residentBytes ?? 0), blockCacheBytes: database.blockCacheBytes)
    }

    /// The best `k` live documents for `query` (token → weight), optionally restricted to
    /// documents whose stored field equals a value, with per-token explanations; exact, or
    /// approximate as `mode` asks (the answer says which). `algorithm` overrides the shard's
    /// exact algorithm (tests compare against `ExhaustiveSearch`).
    public func search(
        _ query: [String: Float], k: Int, filter: [String: String] = [:], explain: Bool = false, mode: SearchMode = .exact,
        algorithm override: (any SearchAlgorithm)? = nil
    ) throws -> ShardAnswer {
        let algorithm = override ?? self.algorithm
        let s = state
        let quantized = Self.quantize(query, state: s)
        var allowed = s.live
        for (field, value) in filter {
            var matching = DocumentFilter(count: Int(s.manifest.nextDocument), allowed: false)
            try database.scan(prefix: ShardKeys.fieldKey(field: field, value: value, doc: nil)) { key, _ in
                matching.insert(ShardKeys.number(key, at: key.count - 4))
                return true
            }
            allowed = allowed.intersection(matching)
        }
        let forward = s.forward
        var settings = forward == nil ? nil : mode.resolve(s.manifest.approximate)
        // A target recall is served the fastest way that reaches it: exactly when that is cheaper.
        // Explicit settings are applied as given.
        if case .recall = mode, settings != nil, ApproximateSearch.exactIsCheaper(query: quantized, in: s.main) { settings = nil }
        let main: [ScoredDoc]
        var work: ApproximateSearch.Work?
        if let settings, let forward {
            (main, work) = approximateSearch.search(quantized, in: s.main, forward: forward, k: k, filter: allowed, settings: settings)
        } else {
            main = algorithm.search(quantized, in: s.main, k: k, filter: allowed)
        }
        var merged: [ScoredDoc]
        if s.delta.postingCount > 0 {
            // Two segments, merged by `HitOrder`. In the bulk-loaded one internal ids follow
            // external ids; the writes' do not, so their k-th place must hold all of its tie.
            // Online writes are few: their segment is always searched exactly.
            let delta = Self.top(k, algorithm: algorithm, quantized, in: s.delta, filter: allowed, ids: s.externalIDs)
            merged = (main + delta).sorted { HitOrder.precedes($0.score, s.externalIDs[$0.doc] ?? "", $1.score, s.externalIDs[$1.doc] ?? "") }
            merged = Array(merged.prefix(k))
        } else {
            // One bulk-loaded segment: internal ids follow external ids, so its order is `HitOrder`.
            merged = main
        }
        let hits = try merged.map { scored in
            var hit = Hit(id: s.externalIDs[scored.doc] ?? "", doc: scored.doc, score: Float(scored.score) * quantized.scale, rawScore: scored.score)
            if explain { hit.explanation = try self.explain(doc: scored.doc, query: query, state: s) }
            return hit
        }
        return ShardAnswer(hits: hits, approximate: settings, work: work)
    }

    /// The best `k` of `segment` in `HitOrder`, with every document tied with the k-th (the
    /// algorithm breaks ties by internal id): asks for more while the last place is tied.
    static func top(
        _ k: Int, algorithm: any SearchAlgorithm, _ query: QuantizedQuery, in segment: InvertedIndex, filter: DocumentFilter, ids: [UInt32: String]
    ) -> [ScoredDoc] {
        var want = k
        while true {
            let found = algorithm.search(query, in: segment, k: want, filter: filter)
            guard found.count == want, want < segment.documentCount, k > 0, found[want - 1].score == found[k - 1].score else {
                return Array(found.sorted { HitOrder.precedes($0.score, ids[$0.doc] ?? "", $1.score, ids[$1.doc] ?? "") }.prefix(k))
            }
            want = min(want * 2, segment.documentCount)
        }
    }

    /// What one integer score of `query` is worth as a float score on this shard.
    public func scoreScale(for query: [String: Float]) -> Float {
        QuantizedQuery.scale(maxWeight: Self.largestWeight(query) ?? 1, documents: state.quantizer)
    }

    /// The query's tokens this shard knows, quantized with the step of the whole query (see
    /// `QuantizedQuery`), so that every shard scores a query on the same integer scale.
    static func quantize(_ query: [String: Float], state s: State) -> QuantizedQuery {
        var known: [(UInt32, Float)] = []
        known.reserveCapacity(query.count)
        for (token, weight) in query {
            if let term = s.termOf[token] { known.append((term, weight)) }
        }
        return QuantizedQuery(SparseVector(pairs: known), documents: s.quantizer, maxWeight: largestWeight(query) ?? 1)
    }

    /// The largest positive finite weight of the whole query (nil when it has none: the step
    /// is then 1/65535, in `quantize` and `scoreScale` alike).
    static func largestWeight(_ query: [String: Float]) -> Float? {
        var largest: Float?
        for weight in query.values where weight > 0 && weight.isFinite { largest = max(largest ?? weight, weight) }
        return largest
    }

    /// Each token the document shares with the query: query weight × dequantized document weight.
    func explain(doc: UInt32, query: [String: Float], state s: State) throws -> [TermContribution] {
        let key = ShardKeys.key("F", doc)
        guard let record = try database.get(key) else { return [] }
        let forward: (terms: [UInt32], codes: [UInt8])
        do {
            forward = try ForwardVectorCodec.decode(record)
        } catch let error as CorruptData {
            throw StorageError.corrupt(path: database.path, key: ShardKeys.describe(key), reason: error.reason)
        }
        return zip(forward.terms, forward.codes).compactMap { term, code in
            guard let token = s.tokens[term], let weight = query[token] else { return nil }
            return TermContribution(token: token, queryWeight: weight, documentWeight: s.quantizer.dequantize(code))
        }.sorted { $0.product > $1.product }
    }

    /// The score of the document with external id `id` for `query` and each matched token's
    /// contribution, best first; nil when no live document has that id.
    public func explain(id: String, query: [String: Float]) throws -> (score: Float, contributions: [TermContribution])? {
        let s = state
        guard let doc = try lookup(id), s.live.contains(doc) else { return nil }
        let contributions = try explain(doc: doc, query: query, state: s)
        let quantized = Self.quantize(query, state: s)
        let weightOf = Dictionary(uniqueKeysWithValues: zip(quantized.terms, quantized.weights))
        let raw = contributions.reduce(UInt64(0)) { total, c in
            total + (weightOf[s.termOf[c.token]!] ?? 0) * UInt64(s.quantizer.quantize(c.documentWeight))
        }
        return (Float(raw) * quantized.scale, contributions)
    }

    /// The stored document (external id, fields, dequantized vector) for an external id.
    public func document(id: String) throws -> TokenVectorRecord? {
        let s = state
        guard let doc = try lookup(id), s.live.contains(doc), let record = try database.get(ShardKeys.key("F", doc)) else { return nil }
        let forward = try ForwardVectorCodec.decode(record)
        var vector: [String: Float] = [:]
        for (term, code) in zip(forward.terms, forward.codes) { vector[s.tokens[term] ?? "?"] = s.quantizer.dequantize(code) }
        let info = try database.get(ShardKeys.key("I", doc)).flatMap { try? JSONDecoder().decode(DocumentRecord.self, from: Data($0)) }
        return TokenVectorRecord(id: id, vector: vector, fields: info?.fields)
    }
}
