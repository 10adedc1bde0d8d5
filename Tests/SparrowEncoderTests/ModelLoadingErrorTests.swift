import Foundation
import SparrowEncoder
import Testing

/// Bad model folders give errors naming the file and tensor at fault.
@Suite struct ModelLoadingErrorTests {
    /// A copy of the tiny DistilBERT folder whose files the test may change.
    static func copyOfTinyModel() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: (Shared.tinyDistilBert as NSString).appendingPathComponent(name), toPath: dir.file(name))
        }
        return dir
    }

    static func editConfig(_ dir: TemporaryDirectory, _ edit: (inout [String: Any]) -> Void) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir.file("config.json")))
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir.file("config.json")))
    }

    static func loadError(_ dir: String) -> EncoderError? {
        do {
            _ = try SparseEncoder(modelDirectory: dir)
            return nil
        } catch let error as EncoderError {
            return error
        } catch {
            return nil
        }
    }

    @Test func missingWeightsFileIsNamed() throws {
        let dir = try Self.copyOfTinyModel()
        defer { dir.cleanup() }
        try FileManager.default.removeItem(atPath: dir.file("model.safetensors"))
        let error = try #require(Self.loadError(dir.path))
        #expect(error.code == "encoder.missing_file")
        #expect(error.description.contains("model.safetensors"))
    }

    @Test func missingFolderIsNamed() throws {
        let error = try #require(Self.loadError("/nonexistent/model"))
        #expect(error.description.contains("/nonexistent/model"))
    }

    @Test func unknownArchitectureIsRejected() throws {
        let dir = try Self.copyOfTinyModel()
        defer { dir.cleanup() }
        try Self.editConfig(dir) { $0["architectures"] = ["GPT2LMHeadModel"] }
        let error = try #require(Self.loadError(dir.path))
        #expect(error == .unsupportedArchitecture(path: dir.file("config.json"), found: "GPT2LMHeadModel"))
    }

    @Test func tensorShapeIsCheckedAgainstConfig() throws {
        let dir = try Self.copyOfTinyModel()
        defer { dir.cleanup() }
        try Self.editConfig(dir) { $0["hidden_dim"] = 256 }
        let error = try #require(Self.loadError(dir.path))
        #expect(error == .tensorShape(path: dir.file("model.safetensors"), name: "distilbert.transformer.layer.0.ffn.lin1.weight", expected: [256, 64], found: [128, 64]))
    }

    /// Found by reading the code: a position table shorter than the tokenizer's sequences
    /// tripped a precondition in the middle of a build, at the first long document.
    @Test func positionTableShorterThanTheTokenizerIsRefusedAtLoad() throws {
        let dir = try Self.copyOfTinyModel()
        defer { dir.cleanup() }
        try Self.editConfig(dir) { $0["max_position_embeddings"] = 128 }
        let error = try #require(Self.loadError(dir.path))
        #expect(error.code == "encoder.invalid_json")
        #expect(error.description.contains(dir.file("config.json")))
        #expect(error.description.contains("max_position_embeddings is 128, below the tokenizer's maximum sequence length 512"))
    }

    /// An added token with an id past the vocabulary indexed the IDF table out of range: a crash
    /// of the coordinator on a user's query, or of a build.
    @Test func addedTokenOutsideTheVocabularyIsRefusedAtLoad() throws {
        let dir = try Self.copyOfTinyModel()
        defer { dir.cleanup() }
        let path = dir.file("tokenizer.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        var added = try #require(json["added_tokens"] as? [[String: Any]])
        added.append(["id": 1_000_000, "content": "[EXTRA]", "special": true])
        json["added_tokens"] = added
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        let error = try #require(Self.loadError(dir.path))
        #expect(error.code == "encoder.invalid_tokenizer")
        #expect(error.description.contains(path))
        #expect(error.description.contains("added_tokens[\(added.count - 1)] ('[EXTRA]') has id 1000000, outside the vocabulary"))
        #expect(throws: EncoderError.self) { try WordPieceTokenizer.load(modelDirectory: dir.path) }
    }

    @Test func unsupportedDTypeIsNamed() throws {
        let dir = try Self.copyOfTinyModel()
        defer { dir.cleanup() }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("model.safetensors")))
        let headerLength = Int(bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        var header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        // Same byte length, so the data offsets stay valid: only the dtype of one tensor changes.
        let name = "\"vocab_transform.weight\":{\"dtype\":\"F32\""
        #expect(header.contains(name))
        header = header.replacingOccurrences(of: name, with: "\"vocab_transform.weight\":{\"dtype\":\"I32\"")
        bytes.replaceSubrange(8..<(8 + headerLength), with: Data(header.utf8))
        try bytes.write(to: URL(fileURLWithPath: dir.file("model.safetensors")))
        let error = try #require(Self.loadError(dir.path))
        #expect(error == .tensorDType(path: dir.file("model.safetensors"), name: "vocab_transform.weight", found: "I32"))
    }

    @Test func truncatedSafetensorsIsReported() throws {
        let dir = try Self.copyOfTinyModel()
        defer { dir.cleanup() }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("model.safetensors")))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dir.file("model.safetensors")))
        let error = try #require(Self.loadError(dir.path))
        #expect(error.code == "encoder.invalid_safetensors")
        #expect(error.description.contains("truncated"))
        try bytes.prefix(5).write(to: URL(fileURLWithPath: dir.file("model.safetensors")))
        #expect(Self.loadError(dir.path)?.code == "encoder.invalid_safetensors")
    }
}

/// Half-precision tensors are widened exactly.
@Test func safetensorsReadsF16AndBF16() throws {
    let dir = try TemporaryDirectory()
    defer { dir.cleanup() }
    let values: [Float] = [1.5, -2.25, 0, 65504]
    var payload = Data()
    for v in values { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { payload.append(contentsOf: $0) } }
    for v in values { withUnsafeBytes(of: UInt16(v.bitPattern >> 16).littleEndian) { payload.append(contentsOf: $0) } }
    let header = #"{"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[8,16]}}"#
    var file = Data()
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(contentsOf: header.utf8)
    file.append(payload)
    try file.write(to: URL(fileURLWithPath: dir.file("t.safetensors")))
    let tensors = try SafeTensors(path: dir.file("t.safetensors"))
    #expect(try tensors.floats("h", shape: [2, 2]) == values)
    #expect(try tensors.floats("b", shape: [4]) == [1.5, -2.25, 0, 65280], "BF16 keeps the upper 16 bits of a float")
    #expect(throws: EncoderError.tensorShape(path: dir.file("t.safetensors"), name: "b", expected: [2, 2], found: [4])) {
        try tensors.floats("b", shape: [2, 2])
    }
}
