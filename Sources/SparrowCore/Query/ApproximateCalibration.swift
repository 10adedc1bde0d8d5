import Foundation

/// Which `ApproximateSearch` settings reach which recall on one shard: measured when the shard
/// is built (`Calibrator`), stored in its manifest, and used to turn a query's target recall
/// into settings. Stored as JSON (`approximate` in the shard manifest):
///
/// ```
/// {"format_version": 1, "k": 10, "queries": 128,
///  "points": [{"recall": 0.9, "threshold": 0.2, "heap_factor": 0.7, "measured_recall": 0.93, "cost": 31000}, …]}
/// ```
/// One point per target recall that some setting reached: the cheapest such setting (cost:
/// postings read plus documents scored exactly × the mean postings per document). A target
/// above every point is served exactly.
public struct ApproximateCalibration: Codable, Equatable, Sendable {
    public static let currentFormat = 1
    /// The recall targets calibrated, ascending.
    public static let targets = [0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99]
    /// The settings tried: every threshold with every heap factor.
    public static let grid: [ApproximateSearch.Settings] = [0.05, 0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.22, 0.25, 0.3, 0.4].flatMap { threshold in
        [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0].map { ApproximateSearch.Settings(threshold: threshold, heapFactor: $0) }
    }

    public struct Point: Codable, Equatable, Sendable {
        public var recall: Double
        public var threshold: Double
        public var heapFactor: Double
        public var measuredRecall: Double
        public var cost: Double

        public var settings: ApproximateSearch.Settings { .init(threshold: threshold, heapFactor: heapFactor) }

        enum CodingKeys: String, CodingKey {
            case recall, threshold, heapFactor = "heap_factor", measuredRecall = "measured_recall", cost
        }
    }

    public var formatVersion: Int
    public var k: Int
    public var queries: Int
    public var points: [Point]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", k, queries, points
    }

    /// The settings calibrated for `recall`: those of the lowest target at or above it; nil
    /// when no setting reached it (search exactly).
    public func settings(forRecall recall: Double) -> ApproximateSearch.Settings? {
        points.first { $0.recall >= recall - 1e-9 }?.settings
    }
}

/// Measures every setting of `ApproximateCalibration.grid` on queries against their exact
/// answers, one query at a time, each with an index that holds just the query's terms (so a
/// builder calibrates in memory that does not grow with the shard).
public struct Calibrator {
    public let k: Int
    private var recallSums: [Double]
    private var costSums: [Double]
    private var queries = 0
    private let postingsPerDocument: Double

    public init(k: Int = 10, postingsPerDocument: Double) {
        self.k = k
        self.postingsPerDocument = postingsPerDocument
        recallSums = Array(repeating: 0, count: ApproximateCalibration.grid.count)
        costSums = recallSums
    }

    /// A query made from a document, as an inference-free query is made from text: its
    /// `length` strongest terms, each weighted by its inverse document frequency.
    public static func pseudoQuery(
        terms: [UInt32], codes: [UInt8], length: Int, documentFrequency: (UInt32) -> Int, documents: Int
    ) -> SparseVector {
        let strongest = zip(terms, codes).sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(length)
        return SparseVector(pairs: strongest.map { term, _ in
            let df = Double(documentFrequency(term))
            return (term, Float(log(1 + (Double(documents) - df + 0.5) / (df + 0.5))))
        })
    }

    /// Runs `query` exactly and with every setting on `index` (which must hold all its terms).
    public mutating func measure(_ query: QuantizedQuery, in index: InvertedIndex) {
        var exact = [UInt64](repeating: 0, count: index.documentCount)
        for (list, weight) in index.postings(of: query) {
            for (doc, code) in zip(list.docs, list.weights) { exact[Int(doc)] += weight * UInt64(code) }
        }
        var best = TopKQueue(k: k)
        for (doc, score) in exact.enumerated() where score > 0 { best.insert(ScoredDoc(doc: UInt32(doc), score: score)) }
        let answer = Set(best.sorted().map(\.doc))
        guard !answer.isEmpty else { return }
        let search = ApproximateSearch()
        var scorer = ArrayScorer(scores: exact)
        for (i, settings) in ApproximateCalibration.grid.enumerated() {
            let (hits, work) = search.search(query, in: index, k: k, filter: nil, settings: settings, scorer: &scorer)
            recallSums[i] += Double(hits.filter { answer.contains($0.doc) }.count) / Double(answer.count)
            costSums[i] += Double(work.postingsRead) + Double(work.documentsScored) * postingsPerDocument
        }
        queries += 1
    }

    /// The cheapest setting reaching each target.
    public func finish() -> ApproximateCalibration {
        var points: [ApproximateCalibration.Point] = []
        if queries > 0 {
            for target in ApproximateCalibration.targets {
                let reaching = ApproximateCalibration.grid.indices.filter { recallSums[$0] / Double(queries) >= target }
                guard let cheapest = reaching.min(by: { costSums[$0] < costSums[$1] }) else { continue }
                let settings = ApproximateCalibration.grid[cheapest]
                points.append(.init(
                    recall: target, threshold: settings.threshold, heapFactor: settings.heapFactor,
                    measuredRecall: (recallSums[cheapest] / Double(queries) * 10_000).rounded() / 10_000,
                    cost: (costSums[cheapest] / Double(queries)).rounded()))
            }
        }
        return ApproximateCalibration(formatVersion: ApproximateCalibration.currentFormat, k: k, queries: queries, points: points)
    }

    /// Exact scores looked up in a precomputed array.
    struct ArrayScorer: CandidateScorer {
        let scores: [UInt64]
        mutating func score(_ doc: UInt32) -> UInt64 { scores[Int(doc)] }
    }
}
