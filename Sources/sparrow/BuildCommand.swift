import ArgumentParser
import Foundation
import SparrowBuilder
import SparrowEncoder

/// `sparrow build …` runs a build (`build run`, the default); `sparrow build merge …` finishes a
/// sliced one. A group with a default, not a command with a subcommand: a parent's required
/// options would be required of `build merge` too.
struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a sharded index from a corpus (`build run`, the default), or finish a sliced build (`build merge`).",
        subcommands: [BuildRunCommand.self, BuildMergeCommand.self],
        defaultSubcommand: BuildRunCommand.self
    )
}

struct BuildRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Build a sharded index from a corpus: encode, IDF, partition, one bundle per shard (resumable).",
        discussion: """
        Writes OUT/build.json, OUT/shards/<id>/{shard.sst,manifest.json} and OUT/idf.json; load them with \
        `sparrow ctl load OUT --coordinator HOST:PORT`. Encoded batches are kept in OUT/work until the build \
        finishes: run the same command again after an interruption and it resumes from the last finished \
        batch. With --slice I/M the command encodes only slice I (of M processes or machines sharing the \
        work; --slice auto takes it from a Kubernetes Indexed Job or a Slurm job array, see deploy/k8s and \
        deploy/slurm); `sparrow build merge --out OUT DIR…` then writes the bundles from the slices' \
        directories (slices may share one directory on a shared volume: `sparrow build merge --out OUT OUT`).
        """
    )

    @Option(help: "Corpus: JSONL lines {\"_id\"|\"id\", \"title\"?, \"text\"}, optionally .gz.")
    var corpus: String?

    @Option(help: "Pre-encoded vectors ({\"id\", \"vector\"} lines) instead of --corpus: no encoding.")
    var vectors: String?

    @Option(help: "Hugging Face model folder (the encoder; with bm25 or --vectors only its tokenizer, for text queries).")
    var model: String?

    @Option(help: "Query IDF: a file, or `corpus` to compute it (default: MODEL/idf.json, else corpus).")
    var idf: String?

    @Option(help: "Number of shards.")
    var shards: Int

    @Option(help: "Build directory.")
    var out: String

    @OptionGroup var weights: DocumentWeightOptions

    @Option(help: "Documents per work file (the unit of resumption and slicing).")
    var batchDocuments: Int = 1000

    @Option(help: "Encode only slice I of M (I/M, 0-based), or `auto`: from a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, JOB_COMPLETIONS) or a Slurm job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT); finish with `sparrow build merge`.")
    var slice: String?

    @Flag(help: "Skip (and count) malformed lines and repeated ids instead of stopping at the first.")
    var skipBad = false

    @Flag(help: "Also write every document vector to OUT/vectors.jsonl.gz (reuse with --vectors, or check against an exact reference).")
    var keepVectors = false

    @OptionGroup var memory: BuildMemoryOption

    func validate() throws {
        guard (corpus == nil) != (vectors == nil) else { throw ValidationError("give exactly one of --corpus and --vectors") }
    }

    func run() throws {
        try reportingErrors {
            let sliceParts = try slice.map { try BuildSlice.parse($0, environment: ProcessInfo.processInfo.environment) } ?? (0, 1)
            let options = BuildOptions(
                source: corpus.map { .corpus($0) } ?? .vectors(vectors!), model: model,
                weighting: weights.weighting, idf: idf, shards: shards, out: out, threads: weights.threads,
                encodeBatch: weights.batchSize, batchDocuments: batchDocuments, slice: sliceParts, skipBad: skipBad, keepVectors: keepVectors,
                activation: try weights.activationValue(), pruning: try weights.pruning(), memoryBudget: memory.bytes)
            switch try ShardedBuild.run(options) {
            case let .slice(index, count, documents):
                print("slice \(index)/\(count) encoded (of \(documents) documents); when every slice is done: sparrow build merge --out OUT \(out) …")
            case let .complete(manifest, report):
                printFinished(manifest, report, out: out)
            }
        }
    }
}

struct BuildMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Finish a sliced build: read the encoded slices from their directories and write the bundles into --out."
    )

    @Option(help: "Build directory to write (may be one of the slice directories).")
    var out: String

    @Flag(help: "Also write every document vector to OUT/vectors.jsonl.gz.")
    var keepVectors = false

    @OptionGroup var memory: BuildMemoryOption

    @Argument(help: "The --out directories of the `sparrow build --slice` runs.")
    var slices: [String]

    func run() throws {
        try reportingErrors {
            let (manifest, report) = try ShardedBuild.merge(sliceDirectories: slices, out: out, keepVectors: keepVectors, memoryBudget: memory.bytes)
            printFinished(manifest, report, out: out)
        }
    }
}

struct BuildMemoryOption: ParsableArguments {
    @Option(name: .customLong("memory-mb"), help: """
        MiB the shards' sorting and writing may hold; beyond it they spill to OUT/work/scratch. \
        The encoder comes on top: with splade-tiny, 77 MB for one thread.
        """)
    var megabytes: Int = BuildOptions.defaultMemoryBudget >> 20

    func validate() throws {
        guard megabytes >= 16 else { throw ValidationError("--memory-mb must be at least 16") }
    }

    var bytes: Int { megabytes << 20 }
}

private func printFinished(_ manifest: BuildManifest, _ report: BuildReport, out: String) {
    FileHandle.standardError.write(Data("build: \(report.summary)\n".utf8))
    if manifest.skippedLines > 0 { FileHandle.standardError.write(Data("build: \(manifest.skippedLines) bad line(s) skipped\n".utf8)) }
    print("build \(manifest.buildID): \(manifest.documents) documents, \(manifest.postings) postings in \(manifest.shards.count) shard(s) → \(out)")
    for shard in manifest.shards { print("  \(shard.id): \(shard.documents) documents, \(shard.postings) postings") }
}
