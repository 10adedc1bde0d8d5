import Foundation
import SparrowCore
import SparrowStorage
import Testing

/// The change log and checkpoints that shard moves are made of.
@Suite struct ChangeLogTests {
    /// Writes after a checkpoint, replayed on the checkpoint's copy, give identical answers.
    @Test func aCheckpointPlusTheLogEqualsTheSource() throws {
        let fixture = try ShardFixture(documents: 800, seed: 11)
        defer { fixture.cleanup() }
        let source = fixture.directory + "/source"
        try ShardBuilder.build(records: fixture.records, directory: source, shardID: "s")
        let shard = try Shard(directory: source)
        #expect(shard.lastChange == 0)
        try shard.upsert(TokenVectorRecord(id: "early", vector: ["t1": 2]))
        let checkpoint = fixture.directory + "/checkpoint"
        let taken = try shard.checkpoint(to: checkpoint)
        #expect(taken == 1)
        // Writes after the checkpoint: a replacement, a new document, deletes (one of an absent id).
        try shard.upsert(TokenVectorRecord(id: "doc-3", vector: ["t2": 1.5, "t9": 0.5]))
        try shard.upsert(TokenVectorRecord(id: "late", vector: ["t1": 1, "fresh": 2], fields: ["parity": "odd"]))
        #expect(try shard.delete(id: "doc-10"))
        #expect(try !shard.delete(id: "no-such-doc"))
        #expect(shard.lastChange == 4)

        let target = fixture.directory + "/target"
        try ShardBuilder.adopt(checkpoint: checkpoint, directory: target, shardID: "s")
        let copy = try Shard(directory: target)
        #expect(copy.lastChange == 1)
        let (changes, last, trimmed) = try shard.changes(after: copy.lastChange, limit: 2)
        #expect(!trimmed && last == 4 && changes.map(\.sequence) == [2, 3])
        #expect(try copy.apply(changes) == 3)
        #expect(try copy.apply(changes) == 3)   // replaying again changes nothing
        #expect(try copy.apply(try shard.changes(after: 3, limit: 100).changes) == 4)

        for query in fixture.queries(30, seed: 12) + [["fresh": 1], ["t1": 1]] {
            #expect(try copy.search(query, k: 10, filter: ["parity": "odd"]).hits == shard.search(query, k: 10, filter: ["parity": "odd"]).hits)
            #expect(try copy.search(query, k: 20).hits == shard.search(query, k: 20).hits)
        }
        #expect(copy.manifest.liveDocuments == shard.manifest.liveDocuments)
        #expect(try copy.document(id: "doc-10") == nil)
    }

    /// An empty or foreign copy is refused and the shard keeps serving, and opens again, as before.
    @Test func adoptingACopyThatDoesNotOpenKeepsTheServingShard() throws {
        let fixture = try ShardFixture(documents: 200, seed: 17)
        defer { fixture.cleanup() }
        let serving = fixture.directory + "/serving"
        try ShardBuilder.build(records: fixture.records, directory: serving, shardID: "s")
        let query = fixture.queries(1, seed: 18)[0]
        let before = try Shard(directory: serving).search(query, k: 10).hits
        let empty = fixture.directory + "/empty-copy"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        #expect(throws: StorageError.self) { try ShardBuilder.adopt(checkpoint: empty, directory: serving, shardID: "s") }
        let other = fixture.directory + "/other-shard"
        try ShardBuilder.build(records: fixture.records, directory: other, shardID: "t")
        let foreign = fixture.directory + "/foreign-copy"
        _ = try Shard(directory: other).checkpoint(to: foreign)
        #expect(throws: StorageError.self) { try ShardBuilder.adopt(checkpoint: foreign, directory: serving, shardID: "s") }
        let reopened = try Shard(directory: serving)
        #expect(try reopened.search(query, k: 10).hits == before)
        #expect(reopened.manifest.shardID == "s")
    }

    @Test func aGapOrACompactedLogIsRefused() throws {
        let fixture = try ShardFixture(documents: 50, seed: 13)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory, shardID: "s")
        let shard = try Shard(directory: fixture.directory)
        for i in 0..<3 { try shard.upsert(TokenVectorRecord(id: "w\(i)", vector: ["t1": 1])) }
        #expect(throws: StorageError.self) {
            try shard.apply([ShardChange(sequence: 5, kind: .delete("w0"))])
        }
        try shard.compact()
        #expect(try shard.changes(after: 1, limit: 10).trimmed)
        let tail = try shard.changes(after: 3, limit: 10)
        #expect(tail.changes.isEmpty && tail.last == 3 && !tail.trimmed)
        try shard.upsert(TokenVectorRecord(id: "w3", vector: ["t1": 1]))
        let after = try shard.changes(after: 3, limit: 10)
        #expect(after.changes == [ShardChange(sequence: 4, kind: .upsert(TokenVectorRecord(id: "w3", vector: ["t1": 1])))])
    }

    /// A sequenced write applies only where the log ends at the tail it names; refused, it
    /// changes nothing. Replayed elsewhere, its changes keep their write id, so the copy's
    /// tail equals the source's.
    @Test func aSequencedWriteAppliesOnlyAtTheTailItNames() throws {
        let fixture = try ShardFixture(documents: 50, seed: 14)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory + "/a", shardID: "s")
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory + "/b", shardID: "s")
        let (a, b) = (try Shard(directory: fixture.directory + "/a"), try Shard(directory: fixture.directory + "/b"))
        let start = ChangeTail(sequence: 0, write: 0)
        #expect(a.tail == start)
        let first = try a.upsert([TokenVectorRecord(id: "x", vector: ["t1": 1]), TokenVectorRecord(id: "y", vector: ["t2": 1])], as: SequencedWrite(after: start, id: 7))
        #expect(first == ChangeTail(sequence: 2, write: 7))
        // The same place again, or a place the log does not end at: refused, nothing applied.
        for after in [start, ChangeTail(sequence: 2, write: 8), ChangeTail(sequence: 3, write: 7)] {
            #expect(throws: StorageError.self) { try a.upsert([TokenVectorRecord(id: "z", vector: ["t1": 1])], as: SequencedWrite(after: after, id: 9)) }
            #expect(throws: StorageError.self) { try a.delete(ids: ["x"], as: SequencedWrite(after: after, id: 9)) }
        }
        #expect(a.tail == first && a.lastChange == 2)
        #expect(try a.document(id: "z") == nil && a.document(id: "x") != nil)
        let second = try a.delete(ids: ["x", "absent"], as: SequencedWrite(after: first, id: 9))
        #expect(second.deleted == 1 && second.tail == ChangeTail(sequence: 3, write: 9))
        #expect(try a.writeID(at: 0) == 0 && a.writeID(at: 1) == 7 && a.writeID(at: 3) == 9 && a.writeID(at: 4) == nil)

        #expect(try b.apply(try a.changes(after: 0, limit: 10).changes) == 3)
        #expect(b.tail == a.tail)
        #expect(try b.changes(after: 0, limit: 10).changes.map(\.write) == [7, 7, 9])
    }

    /// Compaction keeps the changes after the point it is given, so a copy behind can still
    /// replay them.
    @Test func compactionKeepsTheChangesAfterTheGivenPoint() throws {
        let fixture = try ShardFixture(documents: 50, seed: 15)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory, shardID: "s")
        let shard = try Shard(directory: fixture.directory)
        for i in 0..<5 { try shard.upsert(TokenVectorRecord(id: "w\(i)", vector: ["t1": 1])) }
        try shard.compact(keepingChangesAfter: 2)
        #expect(try shard.changes(after: 1, limit: 10).trimmed)
        #expect(try shard.changes(after: 2, limit: 10).changes.map(\.sequence) == [3, 4, 5])
        #expect(try shard.writeID(at: 2) == nil && shard.writeID(at: 3) == 0)
        try shard.compact(keepingChangesAfter: 1)   // a point already trimmed: the log stays as it is
        #expect(try shard.changes(after: 2, limit: 10).changes.count == 3)
        try shard.compact()
        #expect(try shard.changes(after: 4, limit: 10).trimmed)
        #expect(try !shard.changes(after: 5, limit: 10).trimmed)
    }
}
