import Foundation
import SparrowCore
import SparrowEncoder
import SparrowIO
import SparrowStorage

/// BM25 document vectors (`BM25Weighting`) for a JSONL corpus in two streaming passes:
/// document frequencies and lengths, then the weights.
public enum BM25Job {
    public struct Report: Sendable {
        public var documents: Int
        public var postings: Int
        public var averageLength: Double
        public var skippedLines: Int
    }

    /// Writes the vectors to `output`, which appears only when complete.
    public static func run(
        tokenizer: WordPieceTokenizer, input: String, output: String, k1: Double = 0.9, b: Double = 0.4, showProgress: Bool = true
    ) throws -> Report {
        let file = try AtomicOutputFile(path: output)
        let report = try vectors(tokenizer: tokenizer, input: input, k1: k1, b: b, showProgress: showProgress) { id, vector in
            try file.write(TokenVectorRecord.line(id: id, vector: vector, vocabulary: tokenizer.vocabulary))
        }
        try file.commit()
        return report
    }

    /// Hands each document's id and vector to `emit`, in corpus order.
    public static func vectors(
        tokenizer: WordPieceTokenizer, input: String, skipBad: Bool = false, k1: Double = 0.9, b: Double = 0.4, showProgress: Bool = true,
        emit: (String, SparseVector) throws -> Void
    ) throws -> Report {
        let special = Set(tokenizer.special.all)
        var counter = IDFCounter(vocabularySize: tokenizer.vocabulary.count, special: tokenizer.special.all)
        var totalLength = 0
        let counting = ProgressReporter(label: "bm25 statistics", total: nil, enabled: showProgress)
        let first = try ValidatedReader.corpus(path: input, skipBad: skipBad)
        while let document = try first.next() {
            let tokens = tokenizer.encode(document.encoderInput)
            counter.add(tokens: tokens)
            totalLength += BM25Weighting.length(tokens, special: special)
            counting.update(counter.documents)
        }
        guard counter.documents > 0 else { throw BuilderError.emptyCorpus(path: input) }
        counting.update(counter.documents, final: true)

        let weighting = BM25Weighting(
            idf: counter.table, averageLength: Double(totalLength) / Double(counter.documents), special: tokenizer.special.all, k1: k1, b: b)
        let writing = ProgressReporter(label: "bm25 vectors", total: counter.documents, enabled: showProgress)
        let second = try ValidatedReader.corpus(path: input, skipBad: skipBad)
        var postings = 0
        while let document = try second.next() {
            let vector = weighting.vector(tokens: tokenizer.encode(document.encoderInput))
            try emit(document.id, vector)
            postings += vector.count
            writing.update(second.count)
        }
        writing.update(second.count, final: true)
        return Report(documents: second.count, postings: postings, averageLength: weighting.averageLength, skippedLines: second.skipped)
    }
}
