import Foundation
import SparrowCore
import SparrowIO

/// One line of a vectors file: `{"id": "...", "vector": {"token": weight, ...}, "fields"?: {"name": "value"}}`.
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
        func bad(_ reason: String) -> IOError { .malformedLine(path: path, line: lineNumber, reason: reason) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
            throw bad("not a JSON object")
        }
        let id: String
        switch object["id"] ?? object["_id"] {
        case let text as String where !text.isEmpty: id = text
        case let number as NSNumber: id = number.stringValue
        default: throw bad("field 'id' is missing or empty")
        }
        guard let raw = object["vector"] as? [String: Any] else { throw bad("field 'vector' is missing or not an object") }
        var vector: [String: Float] = [:]
        for (token, value) in raw {
            guard let number = value as? NSNumber, number.floatValue.isFinite, number.floatValue >= 0 else {
                throw bad("vector weight of '\(token)' is not a non-negative number")
            }
            if number.floatValue > 0 { vector[token] = number.floatValue }
        }
        var fields: [String: String]?
        if let rawFields = object["fields"] {
            guard let dictionary = rawFields as? [String: Any] else { throw bad("field 'fields' is not an object") }
            fields = try dictionary.mapValues { value in
                guard let text = value as? String else { throw bad("stored fields must be strings") }
                return text
            }
        }
        return TokenVectorRecord(id: id, vector: vector, fields: fields)
    }

    /// The record as one JSON line (tokens sorted), the inverse of `parse`.
    public var jsonLine: String {
        var line = "{\"id\": " + JSONText.quoted(id) + ", \"vector\": {"
        line += vector.sorted { $0.key < $1.key }.map { JSONText.quoted($0.key) + ": \($0.value)" }.joined(separator: ", ")
        if let fields, !fields.isEmpty {
            line += "}, \"fields\": {" + fields.sorted { $0.key < $1.key }.map { JSONText.quoted($0.key) + ": " + JSONText.quoted($0.value) }.joined(separator: ", ")
        }
        return line + "}}\n"
    }

    /// Reads a whole vectors file (plain or gzip).
    public static func readAll(path: String) throws -> [TokenVectorRecord] {
        let reader = try LineReader(path: path)
        var records: [TokenVectorRecord] = []
        while let line = try reader.nextLine() {
            if line.isEmpty { continue }
            records.append(try parse(line, path: path, lineNumber: reader.lineNumber))
        }
        return records
    }
}
