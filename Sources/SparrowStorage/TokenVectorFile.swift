import Foundation
import SparrowCore
import SparrowIO

/// One line of a vectors file: `{"id": "...", "vector": {"token": weight, ...}, "fields"?: {"name": "value"}}`
/// (`_id` is read as `id`; a numeric id as its decimal text). This type owns the format: every
/// reader and writer of vectors files goes through `scan` and `line`.
public struct TokenVectorRecord: Sendable, Equatable {
    public var id: String
    public var vector: [String: Float]
    public var fields: [String: String]?

    public init(id: String, vector: [String: Float], fields: [String: String]? = nil) {
        self.id = id
        self.vector = vector
        self.fields = fields
    }

    /// Parses one line; errors name the file, line and field.
    public static func parse(_ line: ArraySlice<UInt8>, path: String, lineNumber: Int) throws -> TokenVectorRecord {
        var vector: [String: Float] = [:]
        let (id, fields) = try scan(line, path: path, lineNumber: lineNumber) { token, weight in
            let name = token.text
            guard vector.updateValue(weight, forKey: name) == nil else { return false }
            return true
        }
        return TokenVectorRecord(id: id, vector: vector, fields: fields)
    }

    /// Reads one line without building its vector: `entry` gets each token with a positive
    /// weight (zero weights are dropped) and returns false when the token was already given.
    public static func scan(
        _ line: ArraySlice<UInt8>, path: String, lineNumber: Int, entry: (JSONScanner.Key, Float) throws -> Bool
    ) throws -> (id: String, fields: [String: String]?) {
        func bad(_ reason: String) -> IOError { .malformedLine(path: path, line: lineNumber, reason: reason) }
        return try line.withUnsafeBufferPointer { bytes in
            var scanner = JSONScanner(bytes)
            var id: String?
            var fields: [String: String]?
            var sawVector = false
            do {
                guard scanner.peek() == UInt8(ascii: "{") else { throw bad("not a JSON object") }
                try scanner.object { scanner, key in
                    switch key.text {
                    case "id", "_id":
                        if scanner.atNumber() {
                            let number = try scanner.number()
                            id = number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : "\(number)"
                        } else if scanner.peek() == UInt8(ascii: "\"") {
                            id = try scanner.string()
                        } else {
                            throw bad("field 'id' must be a string or a number")
                        }
                    case "vector":
                        guard scanner.peek() == UInt8(ascii: "{") else { throw bad("field 'vector' is missing or not an object") }
                        sawVector = true
                        try scanner.object { scanner, token in
                            guard scanner.atNumber() else { throw bad("vector weight of '\(token.text)' is not a non-negative number") }
                            let weight = Float(try scanner.number())
                            guard weight.isFinite, weight >= 0 else { throw bad("vector weight of '\(token.text)' is not a non-negative number") }
                            if weight > 0, !(try entry(token, weight)) { throw bad("token '\(token.text)' appears twice in 'vector'") }
                        }
                    case "fields":
                        if scanner.consumeNull() { return }
                        guard scanner.peek() == UInt8(ascii: "{") else { throw bad("field 'fields' is not an object") }
                        var values: [String: String] = [:]
                        try scanner.object { scanner, name in
                            guard scanner.peek() == UInt8(ascii: "\"") else { throw bad("stored fields must be strings") }
                            values[name.text] = try scanner.string()
                        }
                        fields = values
                    default:
                        try scanner.skipValue()
                    }
                }
                try scanner.expectEnd()
            } catch let failure as JSONScanner.Failure {
                throw bad("not valid JSON: \(failure)")
            }
            guard let id, !id.isEmpty else { throw bad("field 'id' is missing or empty") }
            guard sawVector else { throw bad("field 'vector' is missing or not an object") }
            return (id, fields)
        }
    }

    /// One line (with its newline) for a document whose `entries` are written in the order given.
    public static func line(id: String, entries: some Sequence<(String, Float)>, fields: [String: String]?) -> String {
        var line = "{\"id\": " + JSONText.quoted(id) + ", \"vector\": {"
        var first = true
        for (token, weight) in entries {
            if !first { line += ", " }
            first = false
            line += JSONText.quoted(token)
            line += ": "
            line += "\(weight)"
        }
        if let fields, !fields.isEmpty {
            line += "}, \"fields\": {" + fields.sorted { $0.key < $1.key }.map { JSONText.quoted($0.key) + ": " + JSONText.quoted($0.value) }.joined(separator: ", ")
        }
        return line + "}}\n"
    }

    /// The record as one line, tokens sorted, the inverse of `parse`.
    public var jsonLine: String {
        Self.line(id: id, entries: vector.sorted { $0.key < $1.key }.lazy.map { ($0.key, $0.value) }, fields: fields)
    }

    /// Reads a whole vectors file (plain or gzip).
    public static func readAll(path: String) throws -> [TokenVectorRecord] {
        let reader = try LineReader(path: path)
        var records: [TokenVectorRecord] = []
        while let line = try reader.nextLine() {
            if LineReader.isBlank(line) { continue }
            records.append(try parse(line, path: path, lineNumber: reader.lineNumber))
        }
        return records
    }
}

extension EncodedDocument {
    /// Parses one vectors-file line, numbering its tokens in `tokens` (added when new).
    public static func parse(_ line: ArraySlice<UInt8>, path: String, lineNumber: Int, tokens: TokenTable) throws -> EncodedDocument {
        var pairs: [(UInt32, Float)] = []
        let (id, fields) = try TokenVectorRecord.scan(line, path: path, lineNumber: lineNumber) { token, weight in
            pairs.append((token.withBytes(tokens.intern), weight))
            return true
        }
        let vector = SparseVector(pairs: pairs)
        guard vector.count == pairs.count else {
            let ids = pairs.map(\.0).sorted()
            let repeated = zip(ids, ids.dropFirst()).first { $0 == $1 }.map { tokens.tokens[Int($0.0)] } ?? "?"
            throw IOError.malformedLine(path: path, line: lineNumber, reason: "token '\(repeated)' appears twice in 'vector'")
        }
        return EncodedDocument(id: id, vector: vector, fields: fields)
    }
}
