import Foundation
import SparrowIO

/// Reads the records of a JSONL input for a build, one per non-blank line. A malformed line
/// or an id seen before stops the read with an error naming the file and line; with
/// `skipBad` such lines are skipped instead and counted (the first few are remembered).
public final class ValidatedReader<Record> {
    public typealias Parse = (_ line: ArraySlice<UInt8>, _ path: String, _ lineNumber: Int) throws -> Record

    private let reader: LineReader
    private let parse: Parse
    private let id: (Record) -> String
    private let skipBad: Bool
    private var firstLine: [String: Int] = [:]
    /// Lines skipped (with `skipBad`).
    public private(set) var skipped = 0
    /// What was wrong with the first skipped lines.
    public private(set) var problems: [String] = []
    /// Records read so far.
    public private(set) var count = 0

    public init(path: String, skipBad: Bool, parse: @escaping Parse, id: @escaping (Record) -> String) throws {
        reader = try LineReader(path: path)
        self.parse = parse
        self.id = id
        self.skipBad = skipBad
    }

    public var path: String { reader.path }

    /// The next valid record, or nil at the end.
    public func next() throws -> Record? {
        while let line = try reader.nextLine() {
            if LineReader.isBlank(line) { continue }
            do {
                let record = try parse(line, reader.path, reader.lineNumber)
                let key = id(record)
                if let first = firstLine[key] {
                    throw IOError.malformedLine(path: reader.path, line: reader.lineNumber, reason: "id '\(key)' already appeared on line \(first)")
                }
                firstLine[key] = reader.lineNumber
                count += 1
                return record
            } catch let error as IOError where skipBad {
                skipped += 1
                if problems.count < 10 { problems.append(error.description) }
            }
        }
        return nil
    }
}

extension ValidatedReader where Record == CorpusDocument {
    /// A corpus: `{"_id" | "id", "title"?, "text"}` lines.
    public static func corpus(path: String, skipBad: Bool) throws -> ValidatedReader {
        try ValidatedReader(path: path, skipBad: skipBad, parse: CorpusDocument.parse, id: \.id)
    }
}
