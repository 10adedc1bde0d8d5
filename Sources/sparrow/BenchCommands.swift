import ArgumentParser
import Foundation
import SparrowCore
import SparrowStorage

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print the JSON shape of shared/bench/anchors.py.",
        subcommands: [BenchShardCommand.self, BenchClusterCommand.self]
    )
}

struct BenchShardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shard",
        abstract: "Build one shard from a vectors file and time single-threaded top-k queries: exact, then the approximate mode's settings.",
        discussion: """
            Recall is measured against exact float scores of the same vectors. The approximate rows are \
            every setting of the calibration grid (threshold × heap factor) and each target recall the \
            shard calibrated when it was built; passes alternate between the rows.
            """
    )

    @Option(help: "Document vectors (JSONL, optionally .gz).")
    var docs: String

    @Option(help: "Query vectors (JSONL, optionally .gz).")
    var queries: String

    @Option(help: "Hits per query.")
    var k: Int = 10

    @Option(help: "Shard directory: kept, and reused without rebuilding when it already holds a shard (build_s is then 0). Default: a temporary one, removed afterwards.")
    var dir: String?

    @Option(help: "Timed passes over the queries (latencies are per query over all passes).")
    var passes: Int = 3

    @Option(help: "Algorithm: dense (term at a time, the default), maxscore (windowed block-max MaxScore) or exhaustive (the oracle).")
    var algorithm: String = "dense"

    @Option(help: "Window of document ids scored at a time by maxscore.")
    var window: Int = 4096

    @Option(help: "Approximate rows: grid (every calibration setting and every calibrated target), targets (the targets only) or none.")
    var approximate: String = "grid"

    func run() throws {
        try reportingErrors {
            let documents = try TokenVectorRecord.readAll(path: docs)
            let queryRecords = try TokenVectorRecord.readAll(path: queries)
            let directory = dir ?? NSTemporaryDirectory() + "sparrow-bench-\(UUID().uuidString)"
            defer { if dir == nil { try? FileManager.default.removeItem(atPath: directory) } }
            var start = Date()
            let reuse = dir != nil && FileManager.default.fileExists(atPath: directory + "/CURRENT")
            if !reuse { try ShardBuilder.build(records: documents, directory: directory, shardID: "bench") }
            let buildSeconds = reuse ? 0 : Date().timeIntervalSince(start)
            start = Date()
            let shard = try Shard(directory: directory)
            let openSeconds = Date().timeIntervalSince(start)
            let exact = FloatBruteForce(documents: documents)
            let chosen: any SearchAlgorithm
            switch algorithm {
            case "maxscore": chosen = BlockMaxMaxScore(windowSize: window)
            case "exhaustive": chosen = ExhaustiveSearch()
            case "dense": chosen = DenseTermAtATime()
            default: throw ValidationError("--algorithm takes maxscore, dense or exhaustive")
            }

            guard ["grid", "targets", "none"].contains(approximate) else { throw ValidationError("--approximate takes grid, targets or none") }
            let calibration = shard.manifest.approximate
            var rows: [Row] = [Row(system: "sparrow-exact", mode: .exact, fields: "\"algorithm\": \(JSONText.quoted(algorithm)), \"window\": \(window)")]
            if approximate == "grid" {
                rows += ApproximateCalibration.grid.map { settings in
                    Row(system: "sparrow-approx", mode: .settings(settings), fields: "\"threshold\": \(settings.threshold), \"heap_factor\": \(settings.heapFactor)")
                }
            }
            if approximate != "none" {
                rows += ApproximateCalibration.targets.map { target in
                    let settings = calibration?.settings(forRecall: target)
                    return Row(
                        system: "sparrow-approx-target", mode: .recall(target),
                        fields: "\"recall_target\": \(target), \"threshold\": \(settings.map { "\($0.threshold)" } ?? "null"), "
                            + "\"heap_factor\": \(settings.map { "\($0.heapFactor)" } ?? "null")")
                }
            }
            var times = [[Double]](repeating: [], count: rows.count)
            var results = [[[String]]](repeating: [], count: rows.count)
            var postingsRead = [Int](repeating: 0, count: rows.count)
            var documentsScored = [Int](repeating: 0, count: rows.count)
            for pass in 0..<max(1, passes) {
                for (r, row) in rows.enumerated() {
                    for query in queryRecords {
                        let t = DispatchTime.now().uptimeNanoseconds
                        let answer = try shard.search(query.vector, k: k, mode: row.mode, algorithm: r == 0 ? chosen : nil)
                        times[r].append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
                        if pass == 0 {
                            results[r].append(answer.hits.map(\.id))
                            postingsRead[r] += answer.work?.postingsRead ?? 0
                            documentsScored[r] += answer.work?.documentsScored ?? 0
                        }
                    }
                }
            }
            let oracle = try queryRecords.map { try shard.search($0.vector, k: k, algorithm: ExhaustiveSearch()).hits.map(\.id) }
            let floatExact = queryRecords.map { exact.topK($0.vector, k: k) }
            let stats = shard.stats
            let postings = documents.reduce(0) { $0 + $1.vector.count }
            let termsMean = Double(queryRecords.reduce(0) { $0 + $1.vector.count }) / Double(max(1, queryRecords.count))
            let work = Percentiles(queryRecords.map { Double(exact.postingCount(of: $0.vector)) })
            let systems = rows.indices.map { r in
                let latency = LatencySummary(times[r])
                return """
                    {"system": \(JSONText.quoted(rows[r].system)), \(rows[r].fields), "recall": \(recall(results[r], floatExact)), \
                    "recall_vs_quantized_oracle": \(recall(results[r], oracle)), "mean_ms": \(latency.mean), \
                    "p50_ms": \(latency.p50), "p99_ms": \(latency.p99), \
                    "postings_read_mean": \(postingsRead[r] / max(1, queryRecords.count)), "documents_scored_mean": \(documentsScored[r] / max(1, queryRecords.count)), \
                    "build_s": \(String(format: "%.2f", buildSeconds)), \
                    "open_s": \(String(format: "%.2f", openSeconds)), "index_bytes": \(stats.bytesOnDisk), \
                    "resident_bytes": \(stats.residentBytes), "threads": 1}
                    """
            }
            let calibrationJSON = try calibration.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) } ?? "null"
            print("""
                {"docs": \(documents.count), "queries": \(queryRecords.count), "postings": \(postings), "k": \(k), \
                "query_terms_mean": \(String(format: "%.2f", termsMean)), \
                "query_postings_p50": \(Int(work.p50)), "query_postings_p99": \(Int(work.p99)), \
                "calibration": \(calibrationJSON), "systems": [\(systems.joined(separator: ",\n"))]}
                """)
        }
    }

    /// One measured configuration: a name, how to search, and its settings as JSON fields.
    struct Row {
        var system: String
        var mode: SearchMode
        var fields: String
    }

    /// Mean overlap of each result with the reference top-k (the anchors' definition).
    func recall(_ found: [[String]], _ reference: [[String]]) -> String {
        let values = zip(found, reference).map { f, e in
            Double(Set(f.prefix(k)).intersection(e.prefix(k)).count) / Double(max(1, min(k, e.count)))
        }
        return String(format: "%.4f", values.reduce(0, +) / Double(max(1, values.count)))
    }
}

/// Mean, median and 99th percentile of latencies in ms, rounded as anchors.py does.
struct LatencySummary {
    let mean: String
    let p50: String
    let p99: String

    init(_ milliseconds: [Double]) {
        let percentiles = Percentiles(milliseconds)
        func format(_ value: Double) -> String { String(format: "%.4f", value) }
        mean = format(milliseconds.reduce(0, +) / Double(max(1, milliseconds.count)))
        p50 = format(percentiles.p50)
        p99 = format(percentiles.p99)
    }
}

/// Median and 99th percentile by anchors.py's rule: the value at index ⌊n·q⌋ of the sorted values.
struct Percentiles {
    let p50: Double
    let p99: Double

    init(_ values: [Double]) {
        let sorted = values.sorted()
        p50 = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        p99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
    }
}

/// Exact float scores over the unquantized vectors: the reference for recall.
struct FloatBruteForce {
    let ids: [String]
    let postings: [String: [(doc: Int, weight: Float)]]

    init(documents: [TokenVectorRecord]) {
        ids = documents.map(\.id)
        var postings: [String: [(doc: Int, weight: Float)]] = [:]
        for (doc, record) in documents.enumerated() {
            for (token, weight) in record.vector { postings[token, default: []].append((doc, weight)) }
        }
        self.postings = postings
    }

    /// Postings of the query's tokens: the work of an engine that reads them all, whose
    /// p99/p50 over the queries tells an engine's latency spread from the queries' own.
    func postingCount(of query: [String: Float]) -> Int {
        query.keys.reduce(0) { $0 + (postings[$1]?.count ?? 0) }
    }

    func topK(_ query: [String: Float], k: Int) -> [String] {
        var scores = [Float](repeating: 0, count: ids.count)
        for (token, weight) in query {
            for posting in postings[token] ?? [] { scores[posting.doc] += weight * posting.weight }
        }
        let ranked = scores.indices.filter { scores[$0] > 0 }.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        return ranked.prefix(k).map { ids[$0] }
    }
}
