import Foundation
import SparrowEncoder
import Testing

@Suite struct TokenizerTests {
    let tokenizer: WordPieceTokenizer

    init() throws {
        tokenizer = try WordPieceTokenizer.load(modelDirectory: Shared.spladeTiny)
    }

    @Test func tokenIDsMatchHuggingFaceForEveryFixtureCase() throws {
        let cases = try Shared.jsonl("fixtures/encoder/tokenizer_cases.jsonl")
        #expect(cases.count > 300)
        var mismatches: [String] = []
        for record in cases {
            let text = try #require(record["text"] as? String)
            let expected = try #require(record["input_ids"] as? [Int]).map(Int32.init)
            let actual = tokenizer.encode(text)
            if actual != expected {
                mismatches.append("\(text.debugDescription.prefix(80)): expected \(expected.prefix(20)) got \(actual.prefix(20))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches:\n\(mismatches.prefix(10).joined(separator: "\n"))")
    }

    @Test func vocabTxtGivesTheSameIDsAsTokenizerJSON() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let vocab = tokenizer.vocabulary.tokens.joined(separator: "\n") + "\n"
        try vocab.write(toFile: dir.file("vocab.txt"), atomically: false, encoding: .utf8)
        let fromVocab = try WordPieceTokenizer.load(modelDirectory: dir.path)
        for text in ["Hello, World!", "[CLS] café ##s", "日本語のテキスト", "supercalifragilisticexpialidocious"] {
            #expect(fromVocab.encode(text) == tokenizer.encode(text))
        }
    }

    @Test func truncatesToMaxLengthKeepingClsAndSep() {
        let ids = tokenizer.encode(String(repeating: "word ", count: 1000))
        #expect(ids.count == 512)
        #expect(ids.first == tokenizer.special.cls)
        #expect(ids.last == tokenizer.special.sep)
    }

    @Test func wordsLongerThanTheLimitBecomeOneUnknown() {
        let ids = tokenizer.tokenize(String(repeating: "a", count: 101))
        #expect(ids == [tokenizer.special.unk])
        #expect(tokenizer.tokenize(String(repeating: "a", count: 100)) != [tokenizer.special.unk])
    }

    @Test func missingTokenizerFilesAreNamed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        #expect(throws: EncoderError.self) { try WordPieceTokenizer.load(modelDirectory: dir.path) }
        do {
            _ = try WordPieceTokenizer.load(modelDirectory: dir.path)
        } catch {
            #expect("\(error)".contains("tokenizer.json"))
        }
    }
}
