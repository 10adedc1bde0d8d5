import ArgumentParser
import Foundation
import SparrowBuilder
import SparrowCore
import SparrowEncoder
import SparrowStorage

struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Encode a JSONL corpus into sparse document vectors with a Hugging Face MLM."
    )

    @Option(help: "Hugging Face model folder (config.json, model.safetensors, tokenizer.json or vocab.txt); with --weighting bm25 only its tokenizer is used.")
    var model: String

    @OptionGroup var weights: DocumentWeightOptions

    @Option(help: "Corpus: JSONL lines {\"_id\"|\"id\", \"title\"?, \"text\"}, optionally .gz.")
    var input: String

    @Option(help: "Vectors file to write: {\"id\", \"vector\": {token: weight}} lines; .gz compresses.")
    var output: String

    @Option(help: "Encode only the first N documents.")
    var limit: Int?

    @Flag(help: "Print a JSON line with throughput and peak memory to stdout when done.")
    var statsJSON = false

    func run() throws {
        try reportingErrors {
            if case let .bm25(k1, b) = weights.weighting {
                let report = try BM25Job.run(tokenizer: try WordPieceTokenizer.load(modelDirectory: model), input: input, output: output, k1: k1, b: b)
                FileHandle.standardError.write(Data(String(
                    format: "bm25: %d documents, %d postings, average length %.1f tokens (k1 %.2f, b %.2f)\n",
                    report.documents, report.postings, report.averageLength, k1, b).utf8))
                return
            }
            let encoder = try SparseEncoder(modelDirectory: model, activation: try weights.activationValue(), pruning: try weights.pruning())
            FileHandle.standardError.write(Data("encoder: \(encoder.summary)\n".utf8))
            let job = EncodeJob(encoder: encoder, options: .init(threads: weights.threads, batchSize: weights.batchSize, limit: limit))
            let report = try job.run(input: input, output: output)
            if statsJSON {
                let line = String(
                    format: "{\"system\": \"sparrow\", \"docs\": %d, \"postings\": %d, \"seconds_encode\": %.3f, \"docs_per_s\": %.2f, \"threads\": %d, \"batch_size\": %d, \"peak_rss_mb\": %.1f}",
                    report.documents, report.postings, report.seconds, report.documentsPerSecond, weights.threads, weights.batchSize, peakResidentMegabytes())
                print(line)
            }
        }
    }
}

/// How documents get their weights: options shared by `encode` and `build`.
struct DocumentWeightOptions: ParsableArguments {
    @Option(name: .customLong("weighting"), help: "Document weights: model (the sparse encoder) or bm25 (BM25 over WordPiece tokens, no model inference).")
    var weightingName: String = "model"

    @Option(help: "BM25 k1 (with --weighting bm25).")
    var k1: Double = 0.9

    @Option(help: "BM25 b (with --weighting bm25).")
    var b: Double = 0.4

    @Option(help: "Pruning: none, max_ratio=R, top_k=N or abs_value=X.")
    var prune: String = "none"

    @Option(help: "Activation: log1p_relu or log1p_log1p_relu (default: from the model folder, else log1p_relu).")
    var activation: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Documents per encoder call.")
    var batchSize: Int = 8

    func validate() throws {
        guard ["model", "bm25"].contains(weightingName) else { throw ValidationError("--weighting takes model or bm25, not '\(weightingName)'") }
    }

    var weighting: BuildOptions.Weighting { weightingName == "bm25" ? .bm25(k1: k1, b: b) : .model }

    func pruning() throws -> Pruning { try Pruning(parsing: prune) }

    /// nil: the model folder's choice.
    func activationValue() throws -> Activation? {
        try activation.map { name in
            guard let value = Activation(rawValue: name) else {
                throw EncoderError.invalidOption(option: "--activation", value: name, expected: "log1p_relu or log1p_log1p_relu")
            }
            return value
        }
    }
}

struct EncodeQueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode-query",
        abstract: "Encode a query inference-free (distinct tokens weighted by IDF) and print it as JSON.",
        discussion: "With --queries, encodes every line of a queries file and prints {\"id\", \"vector\"} lines (for exact reference runs)."
    )

    @Option(help: "idf.json: {token: weight}; tokens it lacks weigh 1.0. Without it every token weighs 1 (BM25 indexes).")
    var idf: String?

    @Option(help: "Model or tokenizer folder (tokenizer.json or vocab.txt); default: the idf file's folder.")
    var model: String?

    @Option(help: "Queries file: {\"_id\", \"text\"} lines, optionally .gz.")
    var queries: String?

    @Argument(help: "The query text.")
    var text: String?

    func validate() throws {
        guard (text == nil) != (queries == nil) else { throw ValidationError("give a query text or --queries, not both") }
        guard idf != nil || model != nil else { throw ValidationError("give --idf, or --model alone for weight-1 (BM25) queries") }
    }

    func run() throws {
        try reportingErrors {
            let folder = model ?? ((idf ?? "") as NSString).deletingLastPathComponent
            let encoder = try QueryEncoder.load(modelDirectory: folder.isEmpty ? "." : folder, idfPath: idf, uniform: idf == nil)
            func json(_ text: String) -> String {
                "{" + encoder.tokenWeights(text).sorted { $0.key < $1.key }.map { "\(JSONText.quoted($0.key)): \($0.value)" }.joined(separator: ", ") + "}"
            }
            guard let queries else { return print(json(text!)) }
            let reader = try ValidatedReader.corpus(path: queries, skipBad: false)
            while let query = try reader.next() {
                print(TokenVectorRecord(id: query.id, vector: encoder.tokenWeights(query.encoderInput)).jsonLine, terminator: "")
            }
        }
    }
}

struct IDFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idf",
        abstract: "Compute corpus IDF, ln(1 + (N - df + 0.5) / (df + 0.5)) over distinct non-special tokens, as idf.json."
    )

    @Option(help: "Model or tokenizer folder (tokenizer.json or vocab.txt).")
    var model: String

    @Option(help: "Corpus: JSONL lines {\"_id\"|\"id\", \"title\"?, \"text\"}, optionally .gz.")
    var input: String

    @Option(help: "idf.json to write.")
    var output: String

    func run() throws {
        try reportingErrors {
            try IDFJob.run(tokenizer: try WordPieceTokenizer.load(modelDirectory: model), input: input, output: output)
        }
    }
}
