import Foundation
import SparrowCore
import SparrowIO
import SparrowStorage
import Testing

/// The files a build streams through: vectors lines, record files, the sorter's runs and the
/// writer's posting runs. Spilling must change nothing but memory.
@Suite struct BuildFilesTests {
    static func parse(_ line: String) throws -> TokenVectorRecord {
        try TokenVectorRecord.parse(Array(line.utf8)[...], path: "v.jsonl", lineNumber: 7)
    }

    @Test func vectorsLinesParseEveryFormTheFileMayTake() throws {
        let record = try Self.parse(#"{"extra": [1, {"x": null}], "_id": 42, "vector": {"a\u00e9": 1.5, "z": 0, "b": 2e-1}, "fields": {"lang": "en"}}"#)
        #expect(record == TokenVectorRecord(id: "42", vector: ["aé": 1.5, "b": 0.2], fields: ["lang": "en"]))
        #expect(try Self.parse(record.jsonLine.trimmingCharacters(in: .newlines)) == record)
        #expect(try Self.parse(#"{"id": "x", "vector": {}, "fields": null}"#) == TokenVectorRecord(id: "x", vector: [:]))
        for (line, reason) in [
            (#"[1]"#, "not a JSON object"),
            (#"{"vector": {"a": 1}}"#, "field 'id' is missing or empty"),
            (#"{"id": "", "vector": {"a": 1}}"#, "field 'id' is missing or empty"),
            (#"{"id": true, "vector": {"a": 1}}"#, "field 'id' must be a string or a number"),
            (#"{"id": "x"}"#, "field 'vector' is missing or not an object"),
            (#"{"id": "x", "vector": {"a": -1}}"#, "vector weight of 'a' is not a non-negative number"),
            (#"{"id": "x", "vector": {"a": "1"}}"#, "vector weight of 'a' is not a non-negative number"),
            (#"{"id": "x", "vector": {"a": 1, "a": 2}}"#, "token 'a' appears twice in 'vector'"),
            (#"{"id": "x", "vector": {"a": 1}, "fields": {"n": 1}}"#, "stored fields must be strings"),
            (#"{"id": "x", "vector": {"a": 1}"#, "not valid JSON: expected '}' at byte 31"),
        ] {
            #expect(throws: IOError.malformedLine(path: "v.jsonl", line: 7, reason: reason)) { try Self.parse(line) }
        }
    }

    @Test func encodedDocumentsRoundTripAndTokensKeepTheirFirstNumber() throws {
        let table = TokenTable(capacity: 2)
        let line = Array(#"{"id": "d", "vector": {"b": 0.5, "a": 2}, "fields": {"k": "v"}}"#.utf8)
        let document = try EncodedDocument.parse(line[...], path: "v", lineNumber: 1, tokens: table)
        #expect(table.tokens == ["b", "a"])
        let repeated = Array(#"{"id": "r", "vector": {"c": 1, "b": 2, "c": 3}}"#.utf8)
        #expect(throws: IOError.malformedLine(path: "v", line: 2, reason: "token 'c' appears twice in 'vector'")) {
            try EncodedDocument.parse(repeated[...], path: "v", lineNumber: 2, tokens: table)
        }
        #expect(document.vector.terms == [0, 1])
        for name in ["c", "d", "e", "a"] { _ = Array(name.utf8).withUnsafeBufferPointer(table.intern) }
        #expect(table.tokens == ["b", "a", "c", "d", "e"], "growing past its capacity keeps every number")
        #expect(Array("e".utf8).withUnsafeBufferPointer(table.id) == 4)
        var bytes: [UInt8] = []
        document.append(to: &bytes)
        var reader = ByteReader(bytes)
        #expect(try EncodedDocument.read(from: &reader) == document)
        var short = ByteReader(Array(bytes.dropLast()))
        #expect(throws: CorruptData.self) { try EncodedDocument.read(from: &short) }
        var outOfRange = ByteReader(bytes)
        #expect(throws: CorruptData.self) { try EncodedDocument.read(from: &outOfRange, termLimit: 1) }
    }

    @Test func recordFilesRefuseACutOrChangedFile() throws {
        let dir = NSTemporaryDirectory() + "sparrow-records-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/r"
        let writer = try RecordFile.Writer(path: path)
        let records: [[UInt8]] = [[], [1, 2, 3], Array(repeating: 7, count: 3 << 20)]
        for record in records { try writer.append(record) }
        #expect(!FileManager.default.fileExists(atPath: path), "the file appears only when committed")
        try writer.commit()
        func readAll(_ path: String) throws -> [[UInt8]] {
            let reader = try RecordFile.Reader(path: path)
            var read: [[UInt8]] = []
            while let record = try reader.next() { read.append(Array(record)) }
            return read
        }
        #expect(try readAll(path) == records)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.dropLast(5).write(to: URL(fileURLWithPath: dir + "/cut"))
        #expect(throws: IOError.self) { try readAll(dir + "/cut") }
        var changed = bytes
        changed[20] ^= 1
        try changed.write(to: URL(fileURLWithPath: dir + "/changed"))
        #expect(throws: IOError.self) { try readAll(dir + "/changed") }
    }

    /// The same documents through a sorter that never spills and one that spills every few
    /// documents, into writers that never and often spill postings: equal SST content.
    @Test func spillingSortersAndWritersWriteTheSameShard() throws {
        let fixture = try ShardFixture(documents: 600, seed: 11)
        defer { fixture.cleanup() }
        let table = TokenTable()
        var largest: Float = 0
        let documents = fixture.records.reversed().map { record in
            let vector = SparseVector(pairs: record.vector.map { token, weight in
                (Array(token.utf8).withUnsafeBufferPointer(table.intern), weight)
            })
            largest = max(largest, vector.weights.max() ?? 0)
            return EncodedDocument(id: record.id, vector: vector, fields: record.fields)
        }
        var checksums: [UInt32] = []
        for (sortBudget, postingBudget) in [(1 << 30, 1 << 30), (4_000, 500), (1, 1)] {
            let sorter = DocumentSorter(budget: sortBudget, scratch: fixture.directory + "/sort-\(sortBudget)")
            for document in documents { try sorter.add(document) }
            let runs = (try? FileManager.default.contentsOfDirectory(atPath: fixture.directory + "/sort-\(sortBudget)")) ?? []
            #expect(runs.count < RecordFile.mergeWidth, "runs are folded into one at \(RecordFile.mergeWidth): open files stay bounded")
            let writer = try ShardSSTWriter(
                path: fixture.directory + "/\(sortBudget).sst",
                settings: .init(shardID: "s", quantizer: WeightQuantizer(maxWeight: largest), provenance: .init(buildID: "b"), postingBudget: postingBudget),
                table: table.tokens, present: 0..<UInt32(table.count), scratch: fixture.directory + "/write-\(sortBudget)")
            let sorted = try sorter.sorted()
            var ids: [String] = []
            while let document = try sorted.next() {
                ids.append(document.id)
                try writer.add(document)
            }
            #expect(ids == fixture.records.map(\.id).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
            checksums.append(try writer.finish().contentChecksum)
            #expect(!FileManager.default.fileExists(atPath: fixture.directory + "/write-\(sortBudget)"), "scratch files are removed")
        }
        #expect(Set(checksums).count == 1)
        // …and equal to the in-memory path every other caller uses.
        let (_, reference) = try ShardBuilder.writeSST(
            records: fixture.records, path: fixture.directory + "/reference.sst", shardID: "s", quantizationScale: WeightQuantizer(maxWeight: largest).scale,
            provenance: .init(buildID: "b"))
        #expect(checksums[0] == reference)
    }

    @Test func aWriterRefusesARepeatedOrUnorderedID() throws {
        let dir = NSTemporaryDirectory() + "sparrow-writer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try ShardSSTWriter(
            path: dir + "/s.sst", settings: .init(shardID: "s", quantizer: WeightQuantizer(maxWeight: 1), provenance: .init()),
            table: ["a"], present: [0], scratch: dir + "/scratch")
        let document = EncodedDocument(id: "b", vector: SparseVector(pairs: [(0, 1)]))
        try writer.add(document)
        #expect(throws: StorageError.invalidRequest("document id 'b' appears more than once")) { try writer.add(document) }
        #expect(throws: StorageError.self) { try writer.add(EncodedDocument(id: "a", vector: SparseVector(pairs: [(0, 1)]))) }
        #expect(throws: StorageError.self) { try writer.add(EncodedDocument(id: "c", vector: SparseVector(pairs: [(3, 1)]))) }
    }
}
