import ArgumentParser
import Foundation
import SparrowClient
import SparrowBuilder
import SparrowCore
import SparrowWire

struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Run every query through a coordinator and print NDCG@10, Recall@100, MRR@10 and latency percentiles.",
        discussion: "Queries are JSONL lines {\"_id\"|\"id\", \"text\"}; qrels are TSV query-id, corpus-id, score (trec_eval definitions, graded gains)."
    )

    @Option(help: "Coordinator protobuf/TCP address, host:port.")
    var coordinator: String

    @OptionGroup var access: ClientSecurityOptions

    @Option(help: "Queries (JSONL: {\"_id\"|\"id\", \"text\"}, optionally .gz).")
    var queries: String

    @Option(help: "Relevance judgments (TSV: query-id, corpus-id, score).")
    var qrels: String

    @Option(help: "Hits per query for NDCG and MRR (Recall@100 always asks for at least 100).")
    var k: Int = 10

    @Option(name: .customLong("run"), help: "Write a TREC run file (query Q0 doc rank score sparrow) here.")
    var runFile: String?

    @Option(help: "Queries in flight at once.")
    var concurrency: Int = 4

    @Option(help: "Deadline per query, milliseconds.")
    var timeoutMs: Int = 10_000

    func run() async throws {
        let judgments: Qrels
        do {
            judgments = try Qrels(tsv: try String(contentsOfFile: qrels, encoding: .utf8), source: qrels)
        } catch let error as EvaluationError {
            throw ValidationError(error.description)
        }
        var read: [(id: String, text: String)] = []
        let reader = try ValidatedReader.corpus(path: queries, skipBad: false)
        while let query = try reader.next() { read.append((query.id, query.encoderInput)) }
        let texts = read
        let client = try access.coordinator(coordinator)
        let depth = UInt32(max(k, 100))
        let timeout = timeoutMs
        let results = try await withThrowingTaskGroup(of: (Int, Sparrow_V1_QueryResponse, Double).self) { group in
            var collected: [(Int, Sparrow_V1_QueryResponse, Double)] = []
            var next = 0
            func submit() {
                guard next < texts.count else { return }
                let index = next
                let text = texts[index].text
                next += 1
                group.addTask {
                    var request = Sparrow_V1_QueryRequest()
                    request.text = text
                    request.k = depth
                    request.timeoutMs = UInt32(timeout)
                    let started = ContinuousClock.now
                    let response = try await client.search(request, timeout: .milliseconds(timeout + 1000))
                    return (index, response, (ContinuousClock.now - started).milliseconds)
                }
            }
            for _ in 0..<max(1, concurrency) { submit() }
            while let result = try await group.next() {
                collected.append(result)
                submit()
            }
            return collected.sorted { $0.0 < $1.0 }
        }
        await client.close()
        let partial = results.filter { $0.1.coverage.shardsOk < $0.1.coverage.shardsTotal }.count
        var rankings: [String: [String]] = [:]
        for (index, response, _) in results { rankings[texts[index].id] = response.hits.map(\.id) }
        if let runFile { try writeRun(results.map { (texts[$0.0].id, $0.1) }, to: runFile) }
        let metrics = RetrievalMetrics(rankings: rankings, qrels: judgments)
        let latency = LatencySummary(results.map(\.2))
        print("""
            {"queries": \(texts.count), "queries_evaluated": \(metrics.queriesEvaluated), \
            "ndcg@10": \(String(format: "%.4f", metrics.ndcgAt10)), "recall@100": \(String(format: "%.4f", metrics.recallAt100)), \
            "mrr@10": \(String(format: "%.4f", metrics.mrrAt10)), "partial_results": \(partial), \
            "latency_ms": {"mean": \(latency.mean), "p50": \(latency.p50), "p99": \(latency.p99)}}
            """)
        if partial > 0 { FileHandle.standardError.write(Data("warning: \(partial) queries had partial results (shards missing)\n".utf8)) }
    }

    func writeRun(_ results: [(query: String, response: Sparrow_V1_QueryResponse)], to path: String) throws {
        var lines = ""
        for (query, response) in results {
            for (rank, hit) in response.hits.enumerated() {
                lines += "\(query) Q0 \(hit.id) \(rank + 1) \(String(format: "%.6f", hit.score)) sparrow\n"
            }
        }
        try lines.write(toFile: path, atomically: false, encoding: .utf8)
    }
}
