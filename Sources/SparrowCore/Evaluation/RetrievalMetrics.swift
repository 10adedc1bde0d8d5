import Foundation

/// Relevance judgments: query id → document id → graded gain (0 = judged not relevant).
public struct Qrels: Sendable, Equatable {
    public var judgments: [String: [String: Int]]

    public init(judgments: [String: [String: Int]]) {
        self.judgments = judgments
    }

    /// Parses TREC/BEIR TSV (`query-id<TAB>corpus-id<TAB>score`, an optional header line);
    /// errors name the source and the line.
    public init(tsv text: String, source: String) throws {
        var judgments: [String: [String: Int]] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if fields.allSatisfy(\.isEmpty) { continue }
            if index == 0 && fields.first == "query-id" { continue }
            guard fields.count >= 3, !fields[0].isEmpty, !fields[1].isEmpty, let score = Double(fields[2]) else {
                throw EvaluationError.malformedQrels(source: source, line: index + 1, text: String(line.prefix(80)))
            }
            judgments[fields[0], default: [:]][fields[1]] = Int(score)
        }
        self.init(judgments: judgments)
    }
}

public enum EvaluationError: Error, CustomStringConvertible, Equatable {
    case malformedQrels(source: String, line: Int, text: String)

    public var description: String {
        switch self {
        case let .malformedQrels(source, line, text):
            "\(source):\(line): expected 'query-id<TAB>corpus-id<TAB>score', got '\(text)'"
        }
    }
}

/// NDCG@10, Recall@100 and MRR@10 with trec_eval's definitions, as `shared/bench/eval_reference.py`
/// computes them: graded gains, log2 discount, the ideal ranking from every judged relevant
/// document; queries without a relevant judgment are skipped.
public struct RetrievalMetrics: Sendable, Equatable {
    public var queriesEvaluated: Int
    public var ndcgAt10: Double
    public var recallAt100: Double
    public var mrrAt10: Double

    /// `rankings`: query id → document ids, best first.
    public init(rankings: [String: [String]], qrels: Qrels) {
        var ndcg = 0.0, recall = 0.0, mrr = 0.0, count = 0
        for (query, judged) in qrels.judgments {
            let relevant = judged.filter { $0.value > 0 }
            guard !relevant.isEmpty else { continue }
            count += 1
            let ranked = rankings[query] ?? []
            let dcg = ranked.prefix(10).enumerated().reduce(0.0) { sum, entry in
                sum + Double(relevant[entry.element] ?? 0) / log2(Double(entry.offset + 2))
            }
            let ideal = relevant.values.sorted(by: >).prefix(10).enumerated().reduce(0.0) { sum, entry in
                sum + Double(entry.element) / log2(Double(entry.offset + 2))
            }
            ndcg += dcg / ideal
            recall += Double(Set(ranked.prefix(100)).intersection(relevant.keys).count) / Double(relevant.count)
            if let rank = ranked.prefix(10).firstIndex(where: { relevant[$0] != nil }) { mrr += 1 / Double(rank + 1) }
        }
        let n = Double(max(count, 1))
        self.init(queriesEvaluated: count, ndcgAt10: ndcg / n, recallAt100: recall / n, mrrAt10: mrr / n)
    }

    public init(queriesEvaluated: Int, ndcgAt10: Double, recallAt100: Double, mrrAt10: Double) {
        self.queriesEvaluated = queriesEvaluated
        self.ndcgAt10 = ndcgAt10
        self.recallAt100 = recallAt100
        self.mrrAt10 = mrrAt10
    }
}
