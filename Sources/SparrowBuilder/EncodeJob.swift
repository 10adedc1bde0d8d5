import Dispatch
import Foundation
import SparrowCore
import SparrowEncoder
import SparrowIO
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
        let reader = try CorpusReader(path: input)
        let lines = try CorpusReader.countLines(path: input)
        let total = min(lines, options.limit ?? .max)
        let file = try AtomicOutputFile(path: output)
        let progress = ProgressReporter(label: "encode", total: total, enabled: options.showProgress)
        let waveSize = options.threads * options.batchSize * 8
        var seen = Set<String>()
        var done = 0
        var postings = 0
        while done < total {
            var wave: [CorpusDocument] = []
            while wave.count < waveSize && done + wave.count < total, let document = try reader.next() {
                guard seen.insert(document.id).inserted else {
                    throw BuilderError.duplicateID(path: input, id: document.id)
                }
                wave.append(document)
            }
            if wave.isEmpty { break }
            let vectors = encodeParallel(wave.map(\.encoderInput))
            for (document, vector) in zip(wave, vectors) {
                try file.write(VectorRecord.line(id: document.id, vector: vector, vocabulary: encoder.tokenizer.vocabulary))
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

    /// Encodes `texts` in batches of `batchSize` on `threads` workers; results in input order.
    func encodeParallel(_ texts: [String]) -> [SparseVector] {
        let batches = stride(from: 0, to: texts.count, by: options.batchSize).map {
            Array(texts[$0..<min($0 + options.batchSize, texts.count)])
        }
        let results = Mutex([[SparseVector]](repeating: [], count: batches.count))
        let next = Atomic(0)
        let encoder = self.encoder
        DispatchQueue.concurrentPerform(iterations: min(options.threads, batches.count)) { _ in
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < batches.count else { return }
                let vectors = encoder.encode(batches[index])
                results.withLock { $0[index] = vectors }
            }
        }
        return results.withLock { $0.flatMap { $0 } }
    }
}

/// Failures of the offline pipeline that are about the data, not the files.
public enum BuilderError: Error, Equatable, CustomStringConvertible {
    case duplicateID(path: String, id: String)
    case emptyCorpus(path: String)
    /// A build directory's files are missing, inconsistent or from other settings.
    case files(path: String, reason: String)

    public var code: String {
        switch self {
        case .duplicateID: "builder.duplicate_id"
        case .emptyCorpus: "builder.empty_corpus"
        case .files: "builder.files"
        }
    }

    public var description: String {
        switch self {
        case let .duplicateID(path, id): "\(path): document id '\(id)' appears more than once"
        case let .emptyCorpus(path): "\(path): the corpus has no documents"
        case let .files(path, reason): "\(path): \(reason)"
        }
    }
}
