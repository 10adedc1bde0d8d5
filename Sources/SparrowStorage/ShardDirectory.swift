import Foundation
import SparrowIO

/// A shard's directory: numbered RocksDB generations (`gen-000001/`, …) and a `CURRENT`
/// file naming the one in use, replaced by an atomic rename.
struct ShardDirectory {
    struct Generation {
        let number: Int
        let path: String
    }

    let path: String

    init(path: String, create: Bool) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard create else { throw StorageError.manifest(path: path, reason: "shard directory does not exist") }
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } else if !isDirectory.boolValue {
            throw StorageError.invalidRequest("\(path) is a file, not a shard directory")
        }
    }

    private var currentFile: String { (path as NSString).appendingPathComponent("CURRENT") }

    func generation(_ number: Int) -> Generation {
        Generation(number: number, path: (path as NSString).appendingPathComponent(String(format: "gen-%06d", number)))
    }

    /// The generation in use, if any.
    func current() throws -> Generation? {
        guard let text = try? String(contentsOfFile: currentFile, encoding: .utf8) else { return nil }
        guard let number = Int(text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "gen-", with: "")) else {
            throw StorageError.manifest(path: currentFile, reason: "CURRENT holds '\(text)', expected gen-NNNNNN")
        }
        return generation(number)
    }

    /// The epoch of the current generation's manifest (read without opening RocksDB's data).
    var currentManifestEpoch: Int? {
        guard let current = try? current(), let database = try? RocksDatabase(path: current.path, createIfMissing: false),
              let bytes = try? database.get(ShardKeys.manifest),
              let manifest = try? ShardManifest.decode(bytes, path: current.path)
        else { return nil }
        return manifest.epoch
    }

    /// A fresh generation number above every existing one; leftovers of interrupted builds
    /// (and a prepared generation, which the new one supersedes) are removed.
    func nextGeneration() -> Generation {
        unlink(preparedFile)
        let current = (try? current())?.number ?? 0
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let highest = names.compactMap { $0.hasPrefix("gen-") ? Int($0.dropFirst(4)) : nil }.max() ?? 0
        for name in names where name.hasPrefix("gen-") && Int(name.dropFirst(4)) != current {
            try? FileManager.default.removeItem(atPath: (path as NSString).appendingPathComponent(name))
        }
        return generation(max(current, highest) + 1)
    }

    private var preparedFile: String { (path as NSString).appendingPathComponent("PREPARED") }

    /// The generation ingested from a build bundle but not yet serving, if any.
    func prepared() throws -> Generation? {
        guard let text = try? String(contentsOfFile: preparedFile, encoding: .utf8) else { return nil }
        guard let number = Int(text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "gen-", with: "")) else {
            throw StorageError.manifest(path: preparedFile, reason: "PREPARED holds '\(text)', expected gen-NNNNNN")
        }
        return generation(number)
    }

    /// Records `generation` as the prepared one (atomically).
    func markPrepared(_ generation: Generation) throws {
        try AtomicOutputFile.write(String(format: "gen-%06d\n", generation.number), to: preparedFile)
    }

    /// Removes `generation`, which never served, and its `PREPARED` mark.
    func discard(_ generation: Generation) {
        unlink(preparedFile)
        try? FileManager.default.removeItem(atPath: generation.path)
    }

    /// Points `CURRENT` at `generation` atomically (write, fsync, rename), then drops the
    /// `PREPARED` mark and every other generation.
    func makeCurrent(_ generation: Generation) throws {
        try AtomicOutputFile.write(String(format: "gen-%06d\n", generation.number), to: currentFile)
        unlink(preparedFile)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        where name.hasPrefix("gen-") && Int(name.dropFirst(4)) != generation.number {
            try? FileManager.default.removeItem(atPath: (path as NSString).appendingPathComponent(name))
        }
    }
}
