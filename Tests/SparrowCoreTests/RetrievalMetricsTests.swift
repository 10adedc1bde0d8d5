import Foundation
import SparrowCore
import Testing

@Suite struct RetrievalMetricsTests {
    @Test func gradedNDCGRecallAndMRRByHand() {
        let qrels = Qrels(judgments: [
            "q1": ["a": 2, "b": 1, "z": 0],
            "q2": ["c": 1],
            "q3": ["x": 0],  // no relevant document: skipped
        ])
        let metrics = RetrievalMetrics(rankings: ["q1": ["b", "z", "a"], "q2": ["d", "e"]], qrels: qrels)
        #expect(metrics.queriesEvaluated == 2)
        // q1: DCG = 1/log2(2) + 2/log2(4) = 2; ideal = 2/log2(2) + 1/log2(3).
        let q1 = 2 / (2 + 1 / log2(3.0))
        #expect(abs(metrics.ndcgAt10 - q1 / 2) < 1e-12)
        #expect(abs(metrics.recallAt100 - 0.5) < 1e-12)
        #expect(abs(metrics.mrrAt10 - 0.5) < 1e-12)
    }

    @Test func onlyTheTopTenCountForNDCGAndMRRButTheTopHundredForRecall() {
        let qrels = Qrels(judgments: ["q": ["hit": 1]])
        let ranking = (0..<10).map { "miss\($0)" } + ["hit"]
        let metrics = RetrievalMetrics(rankings: ["q": ranking], qrels: qrels)
        #expect(metrics.ndcgAt10 == 0 && metrics.mrrAt10 == 0)
        #expect(metrics.recallAt100 == 1)
    }

    @Test func qrelsParseWithHeaderAndNameTheBadLine() throws {
        let qrels = try Qrels(tsv: "query-id\tcorpus-id\tscore\n1\t31715818\t1\n1\t4\t0\n\n", source: "qrels.tsv")
        #expect(qrels.judgments == ["1": ["31715818": 1, "4": 0]])
        #expect(throws: EvaluationError.malformedQrels(source: "qrels.tsv", line: 3, text: "2 7 1")) {
            try Qrels(tsv: "query-id\tcorpus-id\tscore\n1\t2\t1\n2 7 1\n", source: "qrels.tsv")
        }
    }
}
