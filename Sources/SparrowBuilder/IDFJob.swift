import Foundation
import SparrowEncoder
import SparrowIO

/// Computes corpus IDF (`IDFCounter`) over a JSONL corpus with a model's tokenizer and writes
/// it as `idf.json` (`{token: weight}`), atomically.
public enum IDFJob {
    /// Returns the number of documents counted.
    @discardableResult
    public static func run(tokenizer: WordPieceTokenizer, input: String, output: String, showProgress: Bool = true) throws -> Int {
        let reader = try ValidatedReader.corpus(path: input, skipBad: false)
        let progress = ProgressReporter(label: "idf", total: nil, enabled: showProgress)
        var counter = IDFCounter(vocabularySize: tokenizer.vocabulary.count, special: tokenizer.special.all)
        while let document = try reader.next() {
            counter.add(tokens: tokenizer.encode(document.encoderInput))
            progress.update(counter.documents)
        }
        guard counter.documents > 0 else { throw BuilderError.emptyCorpus(path: input) }
        let file = try AtomicOutputFile(path: output)
        try file.write(String(decoding: counter.table.jsonData(vocabulary: tokenizer.vocabulary), as: UTF8.self))
        try file.commit()
        progress.update(counter.documents, final: true)
        return counter.documents
    }
}
