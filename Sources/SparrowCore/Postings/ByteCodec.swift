/// Little helpers for the on-disk formats: LEB128 varints, fixed-width big-endian integers
/// (keys sort numerically) and a bounds-checked reader that throws instead of trapping.
public enum ByteCodec {
    public static func appendVarint(_ value: UInt32, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    public static func appendBigEndian(_ value: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(value >> 24))
        out.append(UInt8(value >> 16 & 0xFF))
        out.append(UInt8(value >> 8 & 0xFF))
        out.append(UInt8(value & 0xFF))
    }

    public static func appendChecksum(to out: inout [UInt8]) {
        let crc = CRC32C.checksum(out)
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(crc >> UInt32(shift) & 0xFF)) }
    }
}

/// Why stored bytes could not be decoded.
public struct CorruptData: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Reads the formats `ByteCodec` writes; every read is bounds-checked.
public struct ByteReader {
    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var isAtEnd: Bool { offset >= bytes.count }

    public mutating func byte() throws -> UInt8 {
        guard offset < bytes.count else { throw CorruptData("truncated at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func varint() throws -> UInt32 {
        var value: UInt32 = 0
        for shift in stride(from: 0, through: 28, by: 7) {
            let b = try byte()
            value |= UInt32(b & 0x7F) << UInt32(shift)
            if b < 0x80 { return value }
        }
        throw CorruptData("varint longer than 5 bytes at byte \(offset)")
    }

    public mutating func bigEndian() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 { value = value << 8 | UInt32(try byte()) }
        return value
    }

    public mutating func bytes(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, offset + count <= bytes.count else { throw CorruptData("truncated: \(count) bytes wanted at byte \(offset)") }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    /// Verifies and strips the trailing CRC-32C of a whole record.
    public static func verifiedPayload(_ record: [UInt8]) throws -> [UInt8] {
        guard record.count >= 4 else { throw CorruptData("record of \(record.count) bytes has no checksum") }
        let payload = Array(record[..<(record.count - 4)])
        var stored: UInt32 = 0
        for (i, b) in record.suffix(4).enumerated() { stored |= UInt32(b) << UInt32(8 * i) }
        guard CRC32C.checksum(payload) == stored else { throw CorruptData("checksum mismatch") }
        return payload
    }
}
