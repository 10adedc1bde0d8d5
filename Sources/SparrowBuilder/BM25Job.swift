import Foundation
import SparrowEncoder
import SparrowIO

/// Writes BM25 document vectors (`BM25Weighting`) for a JSONL corpus in two streaming passes:
/// document frequencies and lengths, then the weights. The output appears only when complete.
public enum BM25Job {
    public struct Report: Sendable {
        public var documents: Int
        public var postings: Int
        public var averageLength: Double
    }

    public static func run(
        tokenizer: WordPieceTokenizer, input: String, output: String, k1: Double = 0.9, b: Double = 0.4, showProgress: Bool = true
    ) throws -> Report {
        let special = Set(tokenizer.special.all)
        var counter = IDFCounter(vocabularySize: tokenizer.vocabulary.count, special: tokenizer.special.all)
        var totalLength = 0
        var seen = Set<String>()
        let counting = ProgressReporter(label: "bm25 statistics", total: nil, enabled: showProgress)
        let first = try CorpusReader(path: input)
        while let document = try first.next() {
            guard seen.insert(document.id).inserted else { throw BuilderError.duplicateID(path: input, id: document.id) }
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
        let file = try AtomicOutputFile(path: output)
        let second = try CorpusReader(path: input)
        var written = 0
        var postings = 0
        while let document = try second.next() {
            let vector = weighting.vector(tokens: tokenizer.encode(document.encoderInput))
            try file.write(VectorRecord.line(id: document.id, vector: vector, vocabulary: tokenizer.vocabulary))
            written += 1
            postings += vector.count
            writing.update(written)
        }
        try file.commit()
        writing.update(written, final: true)
        return Report(documents: written, postings: postings, averageLength: weighting.averageLength)
    }
}
