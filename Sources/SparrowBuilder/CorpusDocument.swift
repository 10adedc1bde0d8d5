import Foundation
import SparrowIO

/// One corpus line: `{"_id" | "id": string or number, "title"?: string, "text": string}`.
public struct CorpusDocument: Sendable, Equatable {
    public var id: String
    public var title: String
    public var text: String

    public init(id: String, title: String = "", text: String) {
        self.id = id
        self.title = title
        self.text = text
    }

    /// What the encoder reads: the title and the text joined by a space (as BEIR does).
    public var encoderInput: String {
        title.isEmpty ? text : text.isEmpty ? title : title + " " + text
    }

    /// Parses one JSONL line; the error names the file, line and field.
    public static func parse(_ line: ArraySlice<UInt8>, path: String, lineNumber: Int) throws -> CorpusDocument {
        func bad(_ reason: String) -> IOError { .malformedLine(path: path, line: lineNumber, reason: reason) }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(line))
        } catch {
            throw bad("not valid JSON")
        }
        guard let fields = object as? [String: Any] else { throw bad("expected a JSON object") }
        let rawID = fields["_id"] ?? fields["id"]
        let id: String
        switch rawID {
        case let string as String: id = string
        case let number as NSNumber: id = number.stringValue
        case nil: throw bad("field '_id' (or 'id') is missing")
        default: throw bad("field '_id' must be a string or a number")
        }
        guard !id.isEmpty else { throw bad("field '_id' is empty") }
        guard let text = fields["text"] as? String else {
            throw bad(fields["text"] == nil ? "field 'text' is missing" : "field 'text' must be a string")
        }
        let title: String
        switch fields["title"] {
        case nil, is NSNull: title = ""
        case let string as String: title = string
        default: throw bad("field 'title' must be a string")
        }
        return CorpusDocument(id: id, title: title, text: text)
    }
}
