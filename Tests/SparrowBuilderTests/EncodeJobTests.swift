import Foundation
import SparrowBuilder
import SparrowEncoder
import SparrowIO
import Testing

@Suite struct EncodeJobTests {
    static let model: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shared = ProcessInfo.processInfo.environment["SPARROW_SHARED"] ?? root.deletingLastPathComponent().appendingPathComponent("shared").path
        return shared + "/models/splade-tiny"
    }()

    static func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "sparrow-job-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func writesOneVectorLinePerDocumentInInputOrder() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let corpus = (0..<7).map { #"{"_id": "d\#($0)", "title": "Title \#($0)", "text": "cerebral white matter \#($0)"}"# }
            + [#"{"id": 42, "text": "numeric id"}"#, ""]
        try corpus.joined(separator: "\n").write(toFile: dir + "/c.jsonl", atomically: false, encoding: .utf8)
        let encoder = try SparseEncoder(modelDirectory: Self.model)
        let job = EncodeJob(encoder: encoder, options: .init(threads: 2, batchSize: 3, showProgress: false))
        let report = try job.run(input: dir + "/c.jsonl", output: dir + "/v.jsonl.gz")
        #expect(report.documents == 8)
        let reader = try LineReader(path: dir + "/v.jsonl.gz")
        var ids: [String] = []
        while let line = try reader.nextLine() {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
            ids.append(try #require(json["id"] as? String))
            let vector = try #require(json["vector"] as? [String: Any])
            #expect(!vector.isEmpty)
            #expect(vector["[CLS]"] == nil)
        }
        #expect(ids == (0..<7).map { "d\($0)" } + ["42"])
        let single = encoder.encode(["Title 3 cerebral white matter 3"])[0]
        #expect(single.count > 0)
    }

    @Test func malformedLineIsNamedAndNoOutputIsLeft() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let corpus = [#"{"_id": "a", "text": "fine"}"#, #"{"_id": "b", "text": "fine"}"#, #"{"_id": "c", "txt": "oops"}"#]
        try corpus.joined(separator: "\n").write(toFile: dir + "/c.jsonl", atomically: false, encoding: .utf8)
        let job = EncodeJob(encoder: try SparseEncoder(modelDirectory: Self.model), options: .init(threads: 1, showProgress: false))
        #expect(throws: IOError.malformedLine(path: dir + "/c.jsonl", line: 3, reason: "field 'text' is missing")) {
            try job.run(input: dir + "/c.jsonl", output: dir + "/v.jsonl")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["c.jsonl"])
    }

    @Test func invalidJSONAndDuplicateIDsAreReported() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let job = EncodeJob(encoder: try SparseEncoder(modelDirectory: Self.model), options: .init(threads: 1, showProgress: false))
        try "{\"_id\": \"a\", \"text\": \"x\"}\n{not json\n".write(toFile: dir + "/bad.jsonl", atomically: false, encoding: .utf8)
        #expect(throws: IOError.malformedLine(path: dir + "/bad.jsonl", line: 2, reason: "not valid JSON")) {
            try job.run(input: dir + "/bad.jsonl", output: dir + "/v.jsonl")
        }
        try "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"a\", \"text\": \"y\"}\n".write(toFile: dir + "/dup.jsonl", atomically: false, encoding: .utf8)
        #expect(throws: IOError.malformedLine(path: dir + "/dup.jsonl", line: 2, reason: "id 'a' already appeared on line 1")) {
            try job.run(input: dir + "/dup.jsonl", output: dir + "/v.jsonl")
        }
        try "\n".write(toFile: dir + "/empty.jsonl", atomically: false, encoding: .utf8)
        #expect(throws: BuilderError.emptyCorpus(path: dir + "/empty.jsonl")) {
            try job.run(input: dir + "/empty.jsonl", output: dir + "/v.jsonl")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/v.jsonl"))
    }
}

@Test func corpusIDFJobWritesTheFormulaForEveryToken() throws {
    let dir = try EncodeJobTests.scratch()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try "{\"_id\": \"a\", \"text\": \"cats and dogs\"}\n{\"_id\": \"b\", \"text\": \"cats cats\"}\n"
        .write(toFile: dir + "/c.jsonl", atomically: false, encoding: .utf8)
    let tokenizer = try WordPieceTokenizer.load(modelDirectory: EncodeJobTests.model)
    #expect(try IDFJob.run(tokenizer: tokenizer, input: dir + "/c.jsonl", output: dir + "/idf.json", showProgress: false) == 2)
    let table = try IDFTable.load(path: dir + "/idf.json", vocabulary: tokenizer.vocabulary)
    let cats = try #require(tokenizer.vocabulary.id("cats"))
    let dogs = try #require(tokenizer.vocabulary.id("dogs"))
    #expect(abs(table[cats] - Float(log(1 + 0.5 / 2.5))) < 1e-6)
    #expect(abs(table[dogs] - Float(log(1 + 1.5 / 1.5))) < 1e-6)
    #expect(table[tokenizer.special.cls] == Float(log(1 + 2.5 / 0.5)), "special tokens have df 0")
}
