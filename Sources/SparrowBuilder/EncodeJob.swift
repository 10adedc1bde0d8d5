import Dispatch
import Foundation
import SparrowCore
import SparrowEncoder
import SparrowIO
import SparrowStorage
import Synchronization

/// Encodes a JSONL corpus into a vectors file: documents are read in waves, split into
/// batches that `threads` workers encode in parallel, and written in input order. The
/// output appears only when complete (see `AtomicOutputFile`).
public struct EncodeJob {
    public struct Options: Sendable {
        public var threads: Int
        public var batchSize: Int
        /// Encode at most this many documents.
        public var limit: Int?
        public var showProgress: Bool

        public init(threads: Int, batchSize: Int = 8, limit: Int? = nil, showProgress: Bool = true) {
            self.threads = max(1, threads)
            self.batchSize = max(1, batchSize)
            self.limit = limit
            self.showProgress = showProgress
        }
    }

    /// What a finished run measured.
    public struct Report: Sendable {
        public var documents: Int
        public var postings: Int
        public var seconds: Double
        public var documentsPerSecond: Double { seconds > 0 ? Double(documents) / seconds : 0 }
    }

    public let encoder: SparseEncoder
    public let options: Options

    public init(encoder: SparseEncoder, options: Options) {
        self.encoder = encoder
        self.options = options
    }

    /// Runs the job from `input` to `output`.
    public func run(input: String, output: String) throws -> Report {
        let reader = try ValidatedReader.corpus(path: input, skipBad: false)
        let lines = try LineReader.countNonBlankLines(path: input)
        let total = min(lines, options.limit ?? .max)
        let file = try AtomicOutputFile(path: output)
        let progress = ProgressReporter(label: "encode", total: total, enabled: options.showProgress)
        let waveSize = options.threads * options.batchSize * 8
        var done = 0
        var postings = 0
        while done < total {
            var wave: [CorpusDocument] = []
            while wave.count < waveSize && done + wave.count < total, let document = try reader.next() {
                wave.append(document)
            }
            if wave.isEmpty { break }
            let vectors = encodeParallel(wave.map(\.encoderInput)).vectors
            for (document, vector) in zip(wave, vectors) {
                try file.write(TokenVectorRecord.line(id: document.id, vector: vector, vocabulary: encoder.tokenizer.vocabulary))
                postings += vector.count
            }
            done += wave.count
            progress.update(done)
        }
        guard done > 0 else { throw BuilderError.emptyCorpus(path: input) }
        try file.commit()
        progress.update(done, final: true)
        return Report(documents: done, postings: postings, seconds: progress.elapsed)
    }

    /// Encodes `texts` in batches of `batchSize` on `threads` workers; vectors in input order,
    /// and the document frequencies of the tokens the encoder read (what corpus IDF counts).
    func encodeParallel(_ texts: [String]) -> (vectors: [SparseVector], frequencies: IDFCounter) {
        let batches = stride(from: 0, to: texts.count, by: options.batchSize).map {
            Array(texts[$0..<min($0 + options.batchSize, texts.count)])
        }
        let tokenizer = encoder.tokenizer
        let results = Mutex([[SparseVector]](repeating: [], count: batches.count))
        let frequencies = Mutex(IDFCounter(vocabularySize: tokenizer.vocabulary.count, special: tokenizer.special.all))
        let next = Atomic(0)
        let encoder = self.encoder
        DispatchQueue.concurrentPerform(iterations: min(options.threads, batches.count)) { _ in
            var counter = IDFCounter(vocabularySize: tokenizer.vocabulary.count, special: tokenizer.special.all)
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < batches.count else { break }
                let tokens = batches[index].map(tokenizer.encode)
                for document in tokens { counter.add(tokens: document) }
                let vectors = encoder.encode(tokens: tokens)
                results.withLock { $0[index] = vectors }
            }
            frequencies.withLock { $0.merge(counter) }
        }
        return (results.withLock { $0.flatMap { $0 } }, frequencies.withLock { $0 })
    }
}

/// Failures of the offline pipeline that are about the data, not the files.
public enum BuilderError: Error, Equatable, CustomStringConvertible {
    case emptyCorpus(path: String)
    /// A build directory's files are missing, inconsistent or from other settings.
    case files(path: String, reason: String)
    /// `--slice` or the batch system's variables do not name a slice.
    case slice(String)

    public var code: String {
        switch self {
        case .emptyCorpus: "builder.empty_corpus"
        case .files: "builder.files"
        case .slice: "builder.slice"
        }
    }

    public var description: String {
        switch self {
        case let .emptyCorpus(path): "\(path): the corpus has no documents"
        case let .files(path, reason): "\(path): \(reason)"
        case let .slice(reason): reason
        }
    }
}

extension TokenVectorRecord {
    /// The vectors-file line of an encoder's vector, tokens spelled by `vocabulary`, in id order.
    static func line(id: String, vector: SparseVector, vocabulary: Vocabulary) -> String {
        line(id: id, entries: vector.entries.lazy.map { (vocabulary.tokens[Int($0.0)], $0.1) }, fields: nil)
    }
}
