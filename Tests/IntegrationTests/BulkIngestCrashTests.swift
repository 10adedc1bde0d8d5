import Foundation
import SparrowStorage
import Testing

/// Real `sparrow` processes killed while they bulk-load a shard.
@Suite struct BulkIngestCrashTests {
    /// The `sparrow` built with these tests: beside the test bundle, in the same configuration
    /// (debug or release), unless `$SPARROW_BIN` names another.
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["SPARROW_BIN"] { return path }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return ((executable as NSString).deletingLastPathComponent as NSString).appendingPathComponent("sparrow")
    }()

    static func writeVectors(_ path: String, documents: Int, prefix: String) throws {
        var lines: [String] = []
        for doc in 0..<documents {
            let tokens = (0..<12).map { "\"t\(($0 * 7 + doc) % 500)\": \(Double(1 + ($0 + doc) % 9) / 4)" }
            lines.append("{\"id\": \"\(prefix)\(doc)\", \"vector\": {\(tokens.joined(separator: ", "))}}")
        }
        try lines.joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// Runs `sparrow shard build`, killing it with SIGKILL after `killAfter` seconds (nil: let it finish).
    static func build(vectors: String, out: String, killAfter: Double?) throws -> (finished: Bool, seconds: Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["shard", "build", "--vectors", vectors, "--out", out]
        process.standardError = FileHandle.nullDevice
        let start = Date()
        try process.run()
        if let killAfter {
            while process.isRunning && Date().timeIntervalSince(start) < killAfter { usleep(2000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        return (process.terminationReason == .exit && process.terminationStatus == 0, Date().timeIntervalSince(start))
    }

    @Test func aKilledBulkLoadLeavesTheOldShardOrTheNewOneNeverAMix() throws {
        let scratch = NSTemporaryDirectory() + "sparrow-crash-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Self.writeVectors(scratch + "/old.jsonl", documents: 300, prefix: "old-")
        try Self.writeVectors(scratch + "/new.jsonl", documents: 4000, prefix: "new-")
        let full = try Self.build(vectors: scratch + "/new.jsonl", out: scratch + "/timing", killAfter: nil)
        #expect(full.finished)
        var outcomes: [Int: Int] = [:]
        for (attempt, fraction) in [0.3, 0.6, 0.8, 0.9, 0.95, 0.98, 1.0, 1.05].enumerated() {
            let shardPath = scratch + "/shard-\(attempt)"
            #expect(try Self.build(vectors: scratch + "/old.jsonl", out: shardPath, killAfter: nil).finished)
            _ = try Self.build(vectors: scratch + "/new.jsonl", out: shardPath, killAfter: full.seconds * fraction)
            let shard = try Shard(directory: shardPath)
            let count = shard.manifest.liveDocuments
            #expect(count == 300 || count == 4000, "kill at \(fraction): \(count) documents")
            let hits = try shard.search(["t1": 1, "t2": 1, "t3": 1], k: 1000).hits
            let prefix = count == 300 ? "old-" : "new-"
            #expect(!hits.isEmpty && hits.allSatisfy { $0.id.hasPrefix(prefix) })
            outcomes[count, default: 0] += 1
        }
        #expect(outcomes[300] ?? 0 > 0, "some kill landed before the switch")
        // A first build killed early leaves no shard at all, and says so.
        _ = try Self.build(vectors: scratch + "/new.jsonl", out: scratch + "/first", killAfter: full.seconds * 0.2)
        #expect(throws: StorageError.self) { try Shard(directory: scratch + "/first") }
    }
}
