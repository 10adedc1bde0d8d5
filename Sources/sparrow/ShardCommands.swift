import ArgumentParser
import Foundation
import SparrowCore
import SparrowStorage

struct ShardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shard",
        abstract: "Build, inspect and query one shard stored in RocksDB.",
        subcommands: [ShardBuildCommand.self, ShardSearchCommand.self, ShardStatsCommand.self, ShardServeCommand.self]
    )
}

struct ShardBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Bulk-load a vectors file ({\"id\", \"vector\": {token: weight}, \"fields\"?}) into a shard, atomically."
    )

    @Option(help: "Vectors file (JSONL, optionally .gz).")
    var vectors: String

    @Option(help: "Shard directory (created if needed; an existing shard is replaced atomically).")
    var out: String

    @Option(help: "Shard id recorded in the manifest.")
    var shardID: String = "0"

    func run() throws {
        try reportingErrors {
            let start = Date()
            let records = try TokenVectorRecord.readAll(path: vectors)
            let manifest = try ShardBuilder.build(records: records, directory: out, shardID: shardID)
            FileHandle.standardError.write(Data(String(
                format: "shard %@: %d documents, %d postings, %d terms in %.1fs\n",
                manifest.shardID, manifest.liveDocuments, manifest.postings, manifest.terms, Date().timeIntervalSince(start)).utf8))
        }
    }
}

struct ShardSearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Exact top-k search of one shard with a sparse query vector."
    )

    @Option(help: "Shard directory.")
    var dir: String

    @Option(help: "Query vector as JSON: {\"token\": weight, ...}.")
    var query: String

    @Option(help: "Number of hits.")
    var k: Int = 10

    @Option(help: "Only documents whose stored field equals a value: field=value (repeatable).")
    var filter: [String] = []

    @Flag(help: "List each matched token with query weight, document weight and product.")
    var explain = false

    @Option(help: "Block cache budget in MiB.")
    var cacheMB: Int = 64

    @OptionGroup var mode: SearchModeOptions

    func run() throws {
        try reportingErrors {
            guard let object = try? JSONSerialization.jsonObject(with: Data(query.utf8)) as? [String: Any] else {
                throw ValidationError("--query must be a JSON object {\"token\": weight}")
            }
            let vector = try object.mapValues { value -> Float in
                guard let number = value as? NSNumber else { throw ValidationError("--query weights must be numbers") }
                return number.floatValue
            }
            var fields: [String: String] = [:]
            for clause in filter {
                let parts = clause.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw ValidationError("--filter takes field=value, got '\(clause)'") }
                fields[parts[0]] = parts[1]
            }
            let shard = try Shard(directory: dir, cacheMegabytes: cacheMB)
            let answer = try shard.search(vector, k: k, filter: fields, explain: explain, mode: try mode.mode())
            print(answer.approximate.map { "approximate: threshold \($0.threshold), heap factor \($0.heapFactor)" } ?? "exact")
            for (rank, hit) in answer.hits.enumerated() {
                print(String(format: "%3d  %-24@ %10.4f", rank + 1, hit.id, hit.score))
                for term in hit.explanation ?? [] {
                    print(String(format: "       %-20@ %8.4f × %8.4f = %8.4f", term.token, term.queryWeight, term.documentWeight, term.product))
                }
            }
        }
    }
}

struct ShardStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Print a shard's manifest and sizes as JSON.")

    @Option(help: "Shard directory.")
    var dir: String

    func run() throws {
        try reportingErrors {
            let shard = try Shard(directory: dir)
            let stats = shard.stats
            let m = shard.manifest
            print("""
                {"shard_id": \(JSONText.quoted(m.shardID)), "epoch": \(m.epoch), "format_version": \(m.formatVersion), \
                "live_documents": \(stats.liveDocuments), "postings": \(stats.postings), "terms": \(stats.terms), \
                "bytes_on_disk": \(stats.bytesOnDisk), "resident_bytes": \(stats.residentBytes), \
                "block_cache_bytes": \(stats.blockCacheBytes), "quantization_scale": \(m.quantizationScale)}
                """)
        }
    }
}
