import Foundation
import SparrowCore
import SparrowIO

/// A file of binary records, for a build's work batches and spilled runs:
///
///     "SPRREC1\n"
///     each record: its length (u32 little-endian, below 2^31) and its bytes
///     the end: 0xFFFFFFFF, the record count (u64 LE), CRC-32C of every record's bytes (u32 LE)
///
/// The file appears under its name only when complete (`AtomicOutputFile`); a reader checks the
/// count and checksum when it reaches the end, so a damaged or cut file is an error, not data.
public enum RecordFile {
    static let magic = Array("SPRREC1\n".utf8)
    static let endMarker: UInt32 = 0xFFFF_FFFF
    /// The largest record either side accepts.
    public static let maxRecordBytes = 1 << 30
    /// Runs merged at once: sorters and posting runs fold their runs into one when they reach it,
    /// so that a merge holds this many files and read buffers (`readBuffer` each) at most.
    public static let mergeWidth = 64
    /// Bytes a reader fetches at a time.
    static let readBuffer = 128 << 10

    public final class Writer {
        private let file: AtomicOutputFile
        private var buffer: [UInt8] = []
        private var count: UInt64 = 0
        private var checksum: UInt32 = 0
        /// Bytes written so far: where the next record will start (for `records(path:range:)`).
        public private(set) var size = RecordFile.magic.count

        public init(path: String) throws {
            file = try AtomicOutputFile(path: path)
            buffer = RecordFile.magic
            buffer.reserveCapacity(1 << 20)
        }

        public var path: String { file.path }

        public func append(_ record: [UInt8]) throws {
            guard record.count <= RecordFile.maxRecordBytes else {
                throw IOError.writeFailed(path: file.path, reason: "a record of \(record.count) bytes is over the limit")
            }
            RecordFile.appendLittleEndian(UInt32(record.count), to: &buffer)
            buffer.append(contentsOf: record)
            checksum = CRC32C.extend(checksum, record)
            count += 1
            size += 4 + record.count
            if buffer.count >= 1 << 20 { try flush() }
        }

        /// Writes the end and renames the file into place.
        public func commit() throws {
            RecordFile.appendLittleEndian(RecordFile.endMarker, to: &buffer)
            RecordFile.appendLittleEndian(UInt32(truncatingIfNeeded: count), to: &buffer)
            RecordFile.appendLittleEndian(UInt32(truncatingIfNeeded: count >> 32), to: &buffer)
            RecordFile.appendLittleEndian(checksum, to: &buffer)
            try flush()
            try file.commit()
        }

        private func flush() throws {
            try buffer.withUnsafeBytes { try file.write($0) }
            buffer.removeAll(keepingCapacity: true)
        }
    }

    public final class Reader {
        public let path: String
        private let file: UnsafeMutablePointer<FILE>
        private var buffer: [UInt8] = []
        private var position = 0
        private var count: UInt64 = 0
        private var checksum: UInt32 = 0
        private var ended = false

        public init(path: String) throws {
            guard let file = fopen(path, "rb") else { throw IOError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
            self.path = path
            self.file = file
            guard try take(RecordFile.magic.count) == RecordFile.magic[...] else { throw damaged("not a Sparrow record file") }
        }

        deinit { fclose(file) }

        private func damaged(_ reason: String) -> IOError { .readFailed(path: path, reason: "\(reason); remove the file and run again") }

        /// The next record, or nil after the last (whose end has been verified).
        public func next() throws -> ArraySlice<UInt8>? {
            if ended { return nil }
            let length = RecordFile.littleEndian(try take(4))
            if length == RecordFile.endMarker {
                let end = try take(12)
                let stored = UInt64(RecordFile.littleEndian(end.prefix(4))) | UInt64(RecordFile.littleEndian(end.dropFirst(4).prefix(4))) << 32
                guard stored == count, RecordFile.littleEndian(end.suffix(4)) == checksum else {
                    throw damaged("record count or checksum does not match")
                }
                guard fgetc(file) == EOF, position == buffer.count else { throw damaged("bytes after the end") }
                ended = true
                return nil
            }
            guard Int(length) <= RecordFile.maxRecordBytes else { throw damaged("a record length of \(length) bytes") }
            let record = try take(Int(length))
            checksum = CRC32C.extend(checksum, record)
            count += 1
            return record
        }

        /// The next `n` bytes (valid until the next call).
        private func take(_ n: Int) throws -> ArraySlice<UInt8> {
            if buffer.count - position < n {
                buffer.removeSubrange(0..<position)
                position = 0
                let want = max(n - buffer.count, RecordFile.readBuffer)
                let old = buffer.count
                buffer.append(contentsOf: repeatElement(0, count: want))
                let read = buffer.withUnsafeMutableBytes { fread($0.baseAddress! + old, 1, want, file) }
                buffer.removeLast(want - read)
                guard buffer.count >= n else {
                    throw ferror(file) != 0 ? IOError.readFailed(path: path, reason: String(cString: strerror(errno))) : damaged("cut short")
                }
            }
            defer { position += n }
            return buffer[position..<(position + n)]
        }
    }

    /// The records in bytes `range` of a committed file (record starts, as `Writer.size` gave
    /// them). Reads only those bytes: the file's own count and checksum are not checked, so
    /// records read this way should carry checksums of their own.
    public static func records(path: String, range: Range<Int>) throws -> [[UInt8]] {
        guard let file = fopen(path, "rb") else { throw IOError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: range.count)
        let read = bytes.withUnsafeMutableBytes { buffer -> Int in
            guard fseeko(file, off_t(range.lowerBound), SEEK_SET) == 0 else { return -1 }
            return fread(buffer.baseAddress, 1, range.count, file)
        }
        guard read == range.count else { throw IOError.readFailed(path: path, reason: "bytes \(range) are past the end") }
        var records: [[UInt8]] = []
        var at = 0
        while at < bytes.count {
            guard at + 4 <= bytes.count else { throw IOError.readFailed(path: path, reason: "a record cut at byte \(range.lowerBound + at)") }
            let length = Int(littleEndian(bytes[at..<at + 4]))
            guard at + 4 + length <= bytes.count else { throw IOError.readFailed(path: path, reason: "a record cut at byte \(range.lowerBound + at)") }
            records.append(Array(bytes[at + 4..<at + 4 + length]))
            at += 4 + length
        }
        return records
    }

    static func appendLittleEndian(_ value: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    static func littleEndian(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var value: UInt32 = 0
        for (i, byte) in bytes.enumerated() { value |= UInt32(byte) << UInt32(8 * i) }
        return value
    }
}
