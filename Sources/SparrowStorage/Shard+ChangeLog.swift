import Foundation
import SparrowCore

/// One online write of a shard, numbered in the order the shard applied it.
public struct ShardChange: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case upsert(TokenVectorRecord)
        case delete(String)
    }

    public var sequence: UInt64
    public var kind: Kind
    /// The id of the write (one coordinator call) it came from; 0: an unsequenced write.
    public var write: UInt64

    public init(sequence: UInt64, kind: Kind, write: UInt64 = 0) {
        self.sequence = sequence
        self.kind = kind
        self.write = write
    }
}

/// A change as stored under `L | sequence`: JSON with exactly one of `upsert` and `delete` set.
struct LoggedChange: Codable {
    var upsert: LoggedDocument?
    var delete: String?
    var write: UInt64?

    struct LoggedDocument: Codable {
        var id: String
        var vector: [String: Float]
        var fields: [String: String]?
    }

    init(upsert record: TokenVectorRecord, write: UInt64) {
        upsert = LoggedDocument(id: record.id, vector: record.vector, fields: record.fields)
        self.write = write == 0 ? nil : write
    }

    init(delete id: String, write: UInt64) {
        delete = id
        self.write = write == 0 ? nil : write
    }

    func kind() -> ShardChange.Kind? {
        if let upsert { return .upsert(TokenVectorRecord(id: upsert.id, vector: upsert.vector, fields: upsert.fields)) }
        return delete.map { .delete($0) }
    }
}

/// The change log: every online write is kept, numbered, until the next compaction, so that a
/// copy of the shard (a move's target) can replay what its source accepted after a checkpoint.
extension Shard {
    /// Adds the write to `batch` under `sequence` (nil: the next one) and records it in the manifest.
    func log(_ change: LoggedChange, sequence: UInt64?, in batch: WriteBatch, state s: inout State) throws {
        let next = sequence ?? (s.manifest.lastChange ?? 0) + 1
        batch.put(ShardKeys.key("L", sequence: next), Array(try JSONEncoder().encode(change)))
        s.manifest.lastChange = next
        s.manifest.lastWrite = change.write
    }

    /// The last write's sequence (0: none).
    public var lastChange: UInt64 { state.manifest.lastChange ?? 0 }

    /// Where the change log ends.
    public var tail: ChangeTail { Self.tail(of: state.manifest) }

    static func tail(of manifest: ShardManifest) -> ChangeTail {
        ChangeTail(sequence: manifest.lastChange ?? 0, write: manifest.lastWrite ?? 0)
    }

    /// Refuses `write` unless the log ends where it says (the caller holds `writeLock`).
    func check(_ write: SequencedWrite?) throws {
        guard let write else { return }
        let tail = self.tail
        guard tail == write.after else {
            throw StorageError.outOfSequence(path: database.path, reason: "the write follows \(write.after), but this copy's log ends at \(tail)")
        }
    }

    /// The write id of change `sequence` (0 for sequence 0); nil when the log no longer holds it.
    public func writeID(at sequence: UInt64) throws -> UInt64? {
        let manifest = state.manifest
        if sequence == 0 { return 0 }
        if sequence == manifest.lastChange { return manifest.lastWrite ?? 0 }
        guard sequence > (manifest.logStart ?? 0), sequence < (manifest.lastChange ?? 0) else { return nil }
        return try changes(after: sequence - 1, limit: 1).changes.first?.write
    }

    /// Up to `limit` writes after sequence `after`, oldest first; `trimmed` when compaction has
    /// dropped some of them (the caller must copy the shard afresh).
    public func changes(after: UInt64, limit: Int) throws -> (changes: [ShardChange], last: UInt64, trimmed: Bool) {
        let manifest = state.manifest
        let last = manifest.lastChange ?? 0
        guard after >= (manifest.logStart ?? 0) else { return ([], last, true) }
        var changes: [ShardChange] = []
        var expected = after + 1
        try database.scan(from: ShardKeys.key("L", sequence: after + 1), prefix: ShardKeys.prefix("L")) { key, value in
            let sequence = ShardKeys.sequence(key)
            guard sequence == expected else {
                throw StorageError.corrupt(path: database.path, key: ShardKeys.describe(key), reason: "change log skips from \(expected - 1) to \(sequence)")
            }
            guard let logged = try? JSONDecoder().decode(LoggedChange.self, from: Data(value)), let kind = logged.kind() else {
                throw StorageError.corrupt(path: database.path, key: ShardKeys.describe(key), reason: "unreadable change record")
            }
            changes.append(ShardChange(sequence: sequence, kind: kind, write: logged.write ?? 0))
            expected += 1
            return changes.count < limit
        }
        return (changes, last, false)
    }

    /// Replays another copy's writes in order, skipping those at or below `lastChange`;
    /// returns the last sequence applied. A gap is refused: the copy would miss writes.
    @discardableResult
    public func apply(_ changes: [ShardChange]) throws -> UInt64 {
        try writeLock.withLock {
            for change in changes where change.sequence > lastChange {
                guard change.sequence == lastChange + 1 else {
                    throw StorageError.invalidRequest("change \(change.sequence) does not follow this copy's last change \(lastChange)")
                }
                switch change.kind {
                case .upsert(let record): _ = try upsertLocked(record, sequence: change.sequence, write: change.write)
                case .delete(let id): _ = try deleteLocked(id: id, sequence: change.sequence, write: change.write)
                }
            }
            return lastChange
        }
    }

    /// Writes a checkpoint of the shard's serving content into the new directory `path`;
    /// returns the last change sequence it holds. Writes wait while it is taken.
    public func checkpoint(to path: String) throws -> UInt64 {
        try writeLock.withLock {
            try database.checkpoint(to: path)
            return lastChange
        }
    }
}
