import SparrowCore
import Testing

@Suite struct JSONScannerTests {
    /// Scans `text` as one object, returning each member's name and its value as read by `value`.
    static func members(_ text: String, value: (inout JSONScanner) throws -> String = { try $0.string() }) throws -> [(String, String)] {
        var result: [(String, String)] = []
        try Array(text.utf8).withUnsafeBufferPointer { bytes in
            var scanner = JSONScanner(bytes)
            try scanner.object { scanner, key in result.append((key.text, try value(&scanner))) }
            try scanner.expectEnd()
        }
        return result
    }

    static func failure(_ text: String) -> JSONScanner.Failure? {
        do {
            _ = try members(text) { scanner in try scanner.skipValue(); return "" }
            return nil
        } catch {
            return error as? JSONScanner.Failure
        }
    }

    @Test func stringsDecodeEveryEscapeAndKeepRawBytesWithoutOne() throws {
        let read = try Self.members(#"{"plain": "caf\u00e9 ok", "esc": "a\"b\\c\/d\n\t\u00e9\ud83d\ude00", "ünï": "x"}"#)
        #expect(read.map(\.0) == ["plain", "esc", "ünï"])
        #expect(read.map(\.1) == ["café ok", "a\"b\\c/d\n\té😀", "x"])
    }

    @Test func numbersFollowJSONGrammar() throws {
        let read = try Self.members(#"{"a": 0, "b": -1.5e3, "c": 2.5E-2, "d": 12345678}"#) { "\(try $0.number())" }
        #expect(read.map(\.1) == ["0.0", "-1500.0", "0.025", "12345678.0"])
        for bad in [#"{"a": 1.}"#, #"{"a": -}"#, #"{"a": 1e}"#, #"{"a": .5}"#, #"{"a": NaN}"#, #"{"a": Infinity}"#] {
            #expect(Self.failure(bad) != nil, "\(bad)")
        }
    }

    @Test func skipValueCrossesNestedValuesAndLiterals() throws {
        let read = try Self.members(#"{"x": {"y": [1, {"z": null}, "s", true, false]}, "k": "v"}"#) { scanner in
            if scanner.peek() == UInt8(ascii: "{") { try scanner.skipValue(); return "-" }
            return try scanner.string()
        }
        #expect(read.map(\.1) == ["-", "v"])
    }

    @Test func errorsSayWhatAndWhere() {
        #expect(Self.failure(#"{"a": "b""#) == .init(reason: "expected '}'", offset: 9))
        #expect(Self.failure(#"{"a" "b"}"#) == .init(reason: "expected ':'", offset: 5))
        #expect(Self.failure("{\"a\": \"b\u{01}\"}") == .init(reason: "control character in a string", offset: 8))
        #expect(Self.failure(#"{"a": "\x"}"#) == .init(reason: "invalid escape", offset: 8))
        #expect(Self.failure(#"{"a": "\ud83d"}"#) == .init(reason: "unpaired surrogate", offset: 13))
        #expect(Self.failure(#"{"a": 1} x"#) == .init(reason: "unexpected text after the JSON value", offset: 9))
        #expect(Self.failure(#"{"a": tru}"#)?.reason == "expected a JSON value")
        let deep = "{\"a\": " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"
        #expect(Self.failure(deep)?.reason == "nested too deeply")
    }
}
