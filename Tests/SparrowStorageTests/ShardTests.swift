import Foundation
import SparrowCore
import SparrowStorage
import Testing

/// Generated token vectors with fixed seeds, and a scratch directory per test.
struct ShardFixture {
    let directory: String
    let records: [TokenVectorRecord]

    init(documents: Int, seed: UInt64) throws {
        directory = NSTemporaryDirectory() + "sparrow-shard-\(UUID().uuidString)"
        var state = seed
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        records = (0..<documents).map { doc in
            var vector: [String: Float] = [:]
            for _ in 0..<(1 + Int(next() % 30)) {
                let r = Double(next() % 10_000) / 10_000
                vector["t\(Int(400 * r * r * r))"] = Float(1 + next() % 300) / 100
            }
            return TokenVectorRecord(id: "doc-\(doc)", vector: vector, fields: ["parity": doc % 2 == 0 ? "even" : "odd"])
        }
    }

    func queries(_ count: Int, seed: UInt64) -> [[String: Float]] {
        var state = seed
        return (0..<count).map { _ in
            var query: [String: Float] = [:]
            for _ in 0..<6 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                query["t\((state >> 33) % 420)"] = Float((state >> 20) % 500) / 100 + 0.1
            }
            return query
        }
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite struct ShardTests {
    @Test("a built shard carries its calibration and answers each mode, saying which answered")
    func approximateModes() throws {
        let fixture = try ShardFixture(documents: 3000, seed: 7)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory, shardID: "s1")
        let shard = try Shard(directory: fixture.directory)
        let calibration = try #require(shard.manifest.approximate)
        #expect(calibration.queries == 128 && calibration.k == 10 && !calibration.points.isEmpty)
        #expect(shard.manifest.formatVersion == 2)
        for query in fixture.queries(20, seed: 8) {
            let exact = try shard.search(query, k: 10, filter: ["parity": "odd"])
            #expect(exact.approximate == nil && exact.work == nil)
            // Threshold 0 reads every posting: the exact hits, from the approximate path.
            let full = try shard.search(query, k: 10, filter: ["parity": "odd"], mode: .settings(.init(threshold: 0, heapFactor: 1)))
            #expect(full.approximate == .init(threshold: 0, heapFactor: 1) && full.hits == exact.hits)
            // A target recall on a shard this small is cheaper exactly: answered exactly, and said.
            let target = try shard.search(query, k: 10, mode: .recall(0.9))
            let unfiltered = try shard.search(query, k: 10)
            #expect(target.approximate == nil && target.hits == unfiltered.hits)
        }
    }

    @Test func searchEqualsTheExhaustiveOracleAndSurvivesReopen() throws {
        let fixture = try ShardFixture(documents: 3000, seed: 1)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory, shardID: "s1")
        let queries = fixture.queries(40, seed: 2)
        var before: [[Hit]] = []
        do {
            let shard = try Shard(directory: fixture.directory)
            before = try queries.map { try shard.search($0, k: 10).hits }
            #expect(shard.manifest.liveDocuments == 3000)
            #expect(shard.stats.residentBytes > 0)
        }
        let reopened = try Shard(directory: fixture.directory)
        for (query, hits) in zip(queries, before) {
            #expect(try reopened.search(query, k: 10, algorithm: ExhaustiveSearch()).hits == hits)
            #expect(try reopened.search(query, k: 10).hits == hits)
            // Scores are the float dot product up to 8-bit quantization.
            for hit in hits {
                let document = try #require(fixture.records.first { $0.id == hit.id })
                let exact = query.reduce(Float(0)) { $0 + $1.value * (document.vector[$1.key] ?? 0) }
                #expect(abs(hit.score - exact) <= 0.02 * exact + 0.05)
            }
        }
    }

    /// Shard nodes send `scoreScale` beside the integer scores; it is computed without
    /// quantizing the query again, so it must still be the scale `search` scored with, also
    /// when the query's largest weight is on a token this shard lacks.
    @Test func scoreScaleIsTheScaleSearchScoresWith() throws {
        let fixture = try ShardFixture(documents: 500, seed: 4)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory, shardID: "s1")
        let shard = try Shard(directory: fixture.directory)
        var queries = fixture.queries(20, seed: 5)
        queries.append(["t1": 0.5, "t2": 1.5, "absent-token": 9])
        queries.append(["t1": 0.5, "t3": -2, "absent-token": .infinity])
        for query in queries {
            let hits = try shard.search(query, k: 10).hits
            #expect(!hits.isEmpty)
            let scale = shard.scoreScale(for: query)
            for hit in hits { #expect(hit.score == Float(hit.rawScore) * scale, "query \(query)") }
        }
    }

    @Test func internalIDsFollowExternalIDsSoTiesRankByID() throws {
        let fixture = try ShardFixture(documents: 0, seed: 9)
        defer { fixture.cleanup() }
        let same: [String: Float] = ["t1": 1, "t2": 0.5]
        let records = ["doc-b", "doc-10", "doc-a", "doc-9"].map { TokenVectorRecord(id: $0, vector: same) }
        try ShardBuilder.build(records: records, directory: fixture.directory, shardID: "s")
        let hits = try Shard(directory: fixture.directory).search(["t1": 1], k: 3).hits
        // Byte order of the ids, whatever the input order: the cluster merges ties the same way.
        #expect(hits.map(\.id) == ["doc-10", "doc-9", "doc-a"])
        #expect(hits.map(\.doc) == [0, 1, 2])
    }

    @Test func filtersAndExplanationsUseStoredData() throws {
        let fixture = try ShardFixture(documents: 500, seed: 3)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory, shardID: "s")
        let shard = try Shard(directory: fixture.directory)
        let query = fixture.queries(1, seed: 4)[0]
        let hits = try shard.search(query, k: 20, filter: ["parity": "odd"], explain: true).hits
        #expect(!hits.isEmpty)
        for hit in hits {
            #expect(Int(hit.id.dropFirst("doc-".count))! % 2 == 1)
            let explained = hit.explanation!.reduce(Float(0)) { $0 + $1.product }
            #expect(abs(explained - hit.score) <= 1e-3 * hit.score + 1e-4)
        }
        #expect(try shard.document(id: "doc-7")?.fields == ["parity": "odd"])
    }

    @Test func upsertsAndDeletesAreVisibleAndCompactionKeepsAnswers() throws {
        let fixture = try ShardFixture(documents: 2000, seed: 5)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory, shardID: "s")
        let queries = fixture.queries(30, seed: 6) + [["brand-new-token": 1.0]]
        var answers: [[Hit]] = []
        do {
            let shard = try Shard(directory: fixture.directory)
            // A brand-new document with a unique token is found at once.
            try shard.upsert(TokenVectorRecord(id: "fresh", vector: ["brand-new-token": 2.0, "t1": 1.0]))
            #expect(try shard.search(["brand-new-token": 1.0], k: 5).hits.map(\.id) == ["fresh"])
            // Replacing a document: the old vector no longer matches, the new one does.
            let victim = fixture.records[10]
            try shard.upsert(TokenVectorRecord(id: victim.id, vector: ["replacement-token": 1.5]))
            #expect(try shard.search(["replacement-token": 1.0], k: 5).hits.map(\.id) == [victim.id])
            #expect(try !shard.search(victim.vector, k: 2000).hits.contains { $0.id == victim.id && $0.doc == 10 })
            // Deleting: gone from every result.
            var deleted = Set<String>()
            for doc in stride(from: 0, to: 2000, by: 2) {
                #expect(try shard.delete(id: "doc-\(doc)"))
                deleted.insert("doc-\(doc)")
        }
        #expect(try !shard.delete(id: "doc-0"))
        answers = try queries.map { try shard.search($0, k: 50).hits }
        #expect(try queries.map { try shard.search($0, k: 50, algorithm: ExhaustiveSearch()).hits } == answers)
        for hits in answers { #expect(hits.allSatisfy { !deleted.contains($0.id) }) }
        let sizeBefore = shard.stats.bytesOnDisk
        try shard.compact()
        #expect(shard.stats.bytesOnDisk < sizeBefore)
        #expect(try queries.map { try shard.search($0, k: 50).hits } == answers)
        }
        let reopened = try Shard(directory: fixture.directory)
        #expect(try queries.map { try reopened.search($0, k: 50).hits } == answers)
        #expect(reopened.manifest.liveDocuments == 1001)
    }

    @Test func acknowledgedWritesSurviveReopen() throws {
        let fixture = try ShardFixture(documents: 100, seed: 7)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory, shardID: "s")
        do {
            let shard = try Shard(directory: fixture.directory)
            try shard.upsert(TokenVectorRecord(id: "late", vector: ["zz": 1]))
            try shard.delete(id: "doc-3")
        }
        let shard = try Shard(directory: fixture.directory)
        #expect(try shard.search(["zz": 1], k: 3).hits.map(\.id) == ["late"])
        #expect(try shard.document(id: "doc-3") == nil)
        #expect(shard.manifest.liveDocuments == 100)
    }

    @Test func aFlippedByteInAPostingBlockIsCorruptionNamingTheKey() throws {
        let fixture = try ShardFixture(documents: 300, seed: 8)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory, shardID: "s")
        let generation = fixture.directory + "/" + (try String(contentsOfFile: fixture.directory + "/CURRENT", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            let database = try RocksDatabase(path: generation, createIfMissing: false)
            var target: ([UInt8], [UInt8])?
            try database.scan(prefix: [UInt8(ascii: "P")]) { key, value in
                target = (key, value)
                return false
            }
            var (key, value) = try #require(target)
            value[value.count / 2] ^= 0x10
            let batch = WriteBatch()
            batch.put(key, value)
            try database.write(batch)
        }
        #expect {
            try Shard(directory: fixture.directory)
        } throws: { error in
            guard let error = error as? StorageError, case let .corrupt(_, key, _) = error else { return false }
            return key.hasPrefix("P/term=") && key.contains("/block=")
        }
    }

    @Test func openingSomethingThatIsNotAShardIsAClearError() throws {
        let directory = NSTemporaryDirectory() + "sparrow-empty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(throws: StorageError.manifest(path: directory, reason: "no CURRENT file: the shard was never built (or its first bulk load did not finish)")) {
            try Shard(directory: directory)
        }
        #expect(throws: StorageError.self) { try Shard(directory: directory + "/missing") }
    }

    @Test func rebuildingReplacesTheShardWithTheNewGeneration() throws {
        let fixture = try ShardFixture(documents: 200, seed: 9)
        defer { fixture.cleanup() }
        try ShardBuilder.build(records: fixture.records, directory: fixture.directory, shardID: "s")
        try ShardBuilder.build(records: Array(fixture.records.prefix(50)), directory: fixture.directory, shardID: "s")
        let shard = try Shard(directory: fixture.directory)
        #expect(shard.manifest.liveDocuments == 50)
        #expect(shard.manifest.epoch == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.directory).sorted() == ["CURRENT", "gen-000002"])
    }
}
