/// Approximate top-k in two steps, each with its knob:
///
/// 1. **Read the strong postings.** With `threshold` β, only the impact tiers (`ImpactTiers`)
///    whose every posting contributes at least β × the query's largest possible contribution
///    (query weight × the term's largest code, over the query's terms) are scored, term at a
///    time, into partial scores. Common terms' long lists are mostly weak postings, so a small β
///    skips most of the work of exact scoring.
/// 2. **Score the candidates exactly.** The best `k` by partial score are scored exactly (by a
///    `CandidateScorer`: the forward index), then every other document whose partial score is
///    at least `heapFactor` × the k-th best exact score so far.
///
/// Results are exact scores, ordered as the exact algorithms order them (`ScoredDoc`); what
/// can differ is which documents are found. β = 0 reads every posting, and then every partial
/// score is exact: the answer is the exact one. Recall is a measurement (`sparrow bench
/// shard`), never an assumption.
public struct ApproximateSearch: Sendable {
    public struct Settings: Sendable, Equatable, Codable {
        /// Fraction of the query's largest contribution below which a tier is not read, in [0, 1).
        public var threshold: Double
        /// Candidates whose partial score reaches this fraction of the k-th exact score are
        /// scored exactly, in (0, 1].
        public var heapFactor: Double

        public init(threshold: Double, heapFactor: Double) {
            self.threshold = threshold
            self.heapFactor = heapFactor
        }

        enum CodingKeys: String, CodingKey {
            case threshold, heapFactor = "heap_factor"
        }

        /// Nil when both knobs are in range; else what is wrong.
        public var problem: String? {
            if !(threshold >= 0 && threshold < 1) { return "threshold must be at least 0 and below 1, not \(threshold)" }
            if !(heapFactor > 0 && heapFactor <= 1) { return "heap_factor must be above 0 and at most 1, not \(heapFactor)" }
            return nil
        }
    }

    /// What one search did: the measure of its cost that calibration compares.
    public struct Work: Sendable, Equatable {
        public var postingsRead = 0
        public var documentsScored = 0
    }

    private let narrow = AccumulatorPool<UInt32>()
    private let wide = AccumulatorPool<UInt64>()

    /// Documents whose accumulator slots are scored and swept together (by default 256k: 1 MiB of
    /// 32-bit slots, within a core's share of this machine's L2).
    let slice: Int

    public init(slice: Int = 1 << 18) {
        precondition(slice > 0, "slice must be positive")
        self.slice = slice
    }

    /// Exact work below which an approximate search costs more than the exact one (its fixed
    /// part: the seeds' and candidates' vectors from memory, a second walk of what it reads).
    /// Measured with `sparrow bench shard`: on the five real sets (1k–11k documents, exact p50
    /// 16–30 µs) every approximate setting was slower than exact; on 200k documents (about
    /// 200k postings a query) the approximate settings up to recall 0.99 were faster.
    public static let exactWorkBelow = 100_000

    /// True when `query`'s exact work on `index` (its postings, and a sweep of a quarter slot per
    /// document) is small enough that exact is the faster answer; a shard asked for a target
    /// recall then answers exactly, and says so.
    public static func exactIsCheaper(query: QuantizedQuery, in index: InvertedIndex) -> Bool {
        var work = index.documentCount / 4
        for (list, _) in index.postings(of: query) {
            work += list.count
            if work >= exactWorkBelow { return false }
        }
        return true
    }

    /// The approximate top `k`, scoring candidates with `forward`.
    public func search(
        _ query: QuantizedQuery, in index: InvertedIndex, forward: ForwardIndex, k: Int, filter: DocumentFilter?, settings: Settings
    ) -> (hits: [ScoredDoc], work: Work) {
        forward.withScorer(for: query) { scorer in
            search(query, in: index, k: k, filter: filter, settings: settings, scorer: &scorer)
        }
    }

    public func search<Scorer: CandidateScorer>(
        _ query: QuantizedQuery, in index: InvertedIndex, k: Int, filter: DocumentFilter?, settings: Settings, scorer: inout Scorer
    ) -> (hits: [ScoredDoc], work: Work) {
        let terms = index.postings(of: query)
        guard k > 0, !terms.isEmpty else { return ([], Work()) }
        let largest = terms.reduce(UInt64(0)) { max($0, $1.weight * UInt64($1.list.maxWeight)) }
        let floor = UInt64((Double(largest) * settings.threshold).rounded(.up))
        if terms.reduce(UInt64(0), { $0 + $1.weight * UInt64($1.list.maxWeight) }) <= UInt64(UInt32.max) {
            return run(terms, floor: floor, pool: narrow, documentCount: index.documentCount, k: k, filter: filter, settings: settings, scorer: &scorer)
        }
        return run(terms, floor: floor, pool: wide, documentCount: index.documentCount, k: k, filter: filter, settings: settings, scorer: &scorer)
    }

    private func run<Slot: FixedWidthInteger & UnsignedInteger & Sendable, Scorer: CandidateScorer>(
        _ terms: [(list: PostingList, weight: UInt64)], floor: UInt64, pool: AccumulatorPool<Slot>, documentCount: Int, k: Int,
        filter: DocumentFilter?, settings: Settings, scorer: inout Scorer
    ) -> (hits: [ScoredDoc], work: Work) {
        var work = Work()
        // What is read: the first tiers of each term's list, each tier a span of postings whose
        // documents ascend.
        var spans: [(list: PostingList, weight: Slot, next: Int, end: Int)] = []
        spans.reserveCapacity(terms.count * 2)
        for (list, weight) in terms {
            for (index, tier) in list.tiers.enumerated() where weight * UInt64(tier.minWeight) >= floor {
                spans.append((list, Slot(truncatingIfNeeded: weight), list.start(ofTier: index).posting, tier.end))
                work.postingsRead += tier.end - list.start(ofTier: index).posting
            }
        }
        var partial = pool.take(count: documentCount)
        defer { pool.give(partial) }
        let factor = UInt64((settings.heapFactor * 1024).rounded())
        var seeds = TopKQueue(k: k)
        var candidates: [ScoredDoc] = []
        // Everything allowed unless a filter says otherwise: its words taken once, since binding
        // the optional filter per document retained its storage each time.
        let everyone = DocumentFilter(count: 0, allowed: true)
        let filtered = filter != nil
        var seedBar: UInt64 = 0
        var candidateBar: UInt64 = 0
        var ends = [Int](repeating: 0, count: spans.count)
        (filter ?? everyone).withUnsafeWords { allowed in
            partial.withUnsafeMutableBufferPointer { acc in
                // A slice of document ids at a time, whose accumulator slots stay in cache between
                // the two passes (a million documents' slots do not).
                for sliceStart in stride(from: 0, to: documentCount, by: slice) {
                    let limit = UInt32(min(sliceStart + slice, documentCount))
                    for (i, span) in spans.enumerated() {
                        span.list.docs.withUnsafeBufferPointer { docs in
                            span.list.weights.withUnsafeBufferPointer { codes in
                                var p = span.next
                                while p < span.end && docs[p] < limit {
                                    acc[Int(docs[p])] &+= span.weight &* Slot(codes[p])
                                    p += 1
                                }
                                ends[i] = p
                            }
                        }
                    }
                    // The same postings again: the first visit of a document takes its partial
                    // score and clears it, so each touched document is seen once, with no map of
                    // them and no sweep of the accumulator. Kept: the best k by partial score, and
                    // every document near enough to the k-th of those so far (a superset of what
                    // the final bar keeps: it only rises).
                    for i in spans.indices {
                        spans[i].list.docs.withUnsafeBufferPointer { docs in
                            for p in spans[i].next..<ends[i] {
                                let doc = Int(docs[p])
                                let score = UInt64(acc[doc])
                                guard score > 0 else { continue }
                                acc[doc] = 0
                                guard score * 1024 >= candidateBar else { continue }
                                if filtered && !DocumentFilter.contains(UInt32(doc), in: allowed) { continue }
                                let entry = ScoredDoc(doc: UInt32(doc), score: score)
                                candidates.append(entry)
                                if score >= seedBar {
                                    seeds.insert(entry)
                                    if seeds.isFull {
                                        seedBar = seeds.threshold
                                        candidateBar = factor * seedBar
                                    }
                                }
                            }
                        }
                        spans[i].next = ends[i]
                    }
                }
            }
        }
        // Exact scores: the seeds first, for a bar near the final one, then each candidate
        // still above the bar.
        var top = TopKQueue(k: k)
        let seeded = seeds.sorted()
        for seed in seeded { top.insert(ScoredDoc(doc: seed.doc, score: scorer.score(seed.doc))) }
        work.documentsScored = seeded.count
        var bar = factor * top.threshold
        for candidate in candidates where candidate.score * 1024 >= bar && !seeded.contains(where: { $0.doc == candidate.doc }) {
            work.documentsScored += 1
            if top.insert(ScoredDoc(doc: candidate.doc, score: scorer.score(candidate.doc))) { bar = factor * top.threshold }
        }
        return (top.sorted(), work)
    }
}
