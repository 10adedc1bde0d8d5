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
            #expect(try copy.search(query, k: 10, filter: ["parity": "odd"]) == shard.search(query, k: 10, filter: ["parity": "odd"]))
            #expect(try copy.search(query, k: 20) == shard.search(query, k: 20))
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
        let before = try Shard(directory: serving).search(query, k: 10)
        let empty = fixture.directory + "/empty-copy"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        #expect(throws: StorageError.self) { try ShardBuilder.adopt(checkpoint: empty, directory: serving, shardID: "s") }
        let other = fixture.directory + "/other-shard"
        try ShardBuilder.build(records: fixture.records, directory: other, shardID: "t")
        let foreign = fixture.directory + "/foreign-copy"
        _ = try Shard(directory: other).checkpoint(to: foreign)
        #expect(throws: StorageError.self) { try ShardBuilder.adopt(checkpoint: foreign, directory: serving, shardID: "s") }
        let reopened = try Shard(directory: serving)
        #expect(try reopened.search(query, k: 10) == before)
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
}
