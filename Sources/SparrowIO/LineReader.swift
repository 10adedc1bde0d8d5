import CZlib
import Foundation

/// Reads a text file line by line, gzip-compressed or plain (zlib detects which).
/// Lines are returned without their `\n` (and without a trailing `\r`).
public final class LineReader {
    public let path: String
    /// 1-based number of the line most recently returned.
    public private(set) var lineNumber = 0
    private let file: gzFile
    private var buffer: [UInt8] = []
    private var position = 0
    private var finished = false
    private let chunk = 1 << 20

    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw IOError.cannotOpen(path: path, reason: "no such file")
        }
        guard let file = gzopen(path, "rb") else {
            throw IOError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        gzbuffer(file, 1 << 17)
        self.path = path
        self.file = file
    }

    deinit {
        gzclose(file)
    }

    /// The one rule for blank lines in every JSONL input: nothing but spaces and tabs
    /// (a trailing `\r` is already gone).
    public static func isBlank(_ line: ArraySlice<UInt8>) -> Bool {
        line.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
    }

    /// Counts the non-blank lines of a file (for progress estimates).
    public static func countNonBlankLines(path: String) throws -> Int {
        let reader = try LineReader(path: path)
        var count = 0
        while let line = try reader.nextLine() {
            if !isBlank(line) { count += 1 }
        }
        return count
    }

    /// The next line's bytes, or `nil` at the end of the file.
    public func nextLine() throws -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[position...].firstIndex(of: UInt8(ascii: "\n")) {
                defer { position = newline + 1 }
                lineNumber += 1
                return trimCR(buffer[position..<newline])
            }
            if finished {
                guard position < buffer.count else { return nil }
                defer { position = buffer.count }
                lineNumber += 1
                return trimCR(buffer[position...])
            }
            try refill()
        }
    }

    private func trimCR(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        line.last == UInt8(ascii: "\r") ? line.dropLast() : line
    }

    private func refill() throws {
        buffer.removeSubrange(0..<position)
        position = 0
        let old = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: chunk))
        let read = buffer.withUnsafeMutableBytes { raw in
            gzread(file, raw.baseAddress! + old, UInt32(chunk))
        }
        if read < 0 {
            var code: Int32 = 0
            let message = String(cString: gzerror(file, &code))
            throw IOError.readFailed(path: path, reason: message)
        }
        buffer.removeLast(chunk - Int(read))
        if read == 0 { finished = true }
    }
}
