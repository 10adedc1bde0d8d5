import Foundation

/// A forward-only JSON reader over one line's bytes, for the inputs read millions of times
/// (vectors files): no intermediate objects, strings returned as bytes when they hold no
/// escape. Errors say what was expected and at which byte of the line.
public struct JSONScanner {
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var reason: String
        /// 0-based byte offset in the line.
        public var offset: Int

        public init(reason: String, offset: Int) {
            self.reason = reason
            self.offset = offset
        }

        public var description: String { "\(reason) at byte \(offset + 1)" }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    public private(set) var offset = 0

    public init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private func fail(_ reason: String) -> Failure { Failure(reason: reason, offset: offset) }

    public mutating func skipWhitespace() {
        while offset < bytes.count, bytes[offset] == 0x20 || bytes[offset] == 0x09 || bytes[offset] == 0x0A || bytes[offset] == 0x0D {
            offset += 1
        }
    }

    /// The next non-blank byte, not consumed; nil at the end.
    public mutating func peek() -> UInt8? {
        skipWhitespace()
        return offset < bytes.count ? bytes[offset] : nil
    }

    public mutating func expect(_ byte: UInt8) throws {
        guard peek() == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
        offset += 1
    }

    /// True (and consumed) when the next byte is `byte`.
    public mutating func consume(_ byte: UInt8) -> Bool {
        guard peek() == byte else { return false }
        offset += 1
        return true
    }

    /// After the last value: only blanks may follow.
    public mutating func expectEnd() throws {
        guard peek() == nil else { throw fail("unexpected text after the JSON value") }
    }

    /// An object member's name: its bytes when it holds no escape (valid while the line is),
    /// else its decoded text.
    public enum Key {
        case raw(UnsafeBufferPointer<UInt8>)
        case escaped(String)

        public var text: String {
            switch self {
            case let .raw(bytes): String(decoding: bytes, as: UTF8.self)
            case let .escaped(text): text
            }
        }

        /// The name's UTF-8 bytes.
        public func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
            switch self {
            case let .raw(bytes): return try body(bytes)
            case let .escaped(text): return try Array(text.utf8).withUnsafeBufferPointer(body)
            }
        }
    }

    /// Reads `{ "name": value, ... }`, calling `member` with each name, positioned at its value,
    /// which `member` must read or skip.
    public mutating func object(_ member: (inout JSONScanner, Key) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        if consume(UInt8(ascii: "}")) { return }
        repeat {
            var key = Key.escaped("")
            try string { key = .raw($0) } escaped: { key = .escaped($0) }
            try expect(UInt8(ascii: ":"))
            try member(&self, key)
        } while consume(UInt8(ascii: ","))
        try expect(UInt8(ascii: "}"))
    }

    public mutating func string() throws -> String {
        var result = ""
        try string { result = String(decoding: $0, as: UTF8.self) } escaped: { result = $0 }
        return result
    }

    /// Reads a string, passing its bytes to `raw` when it holds no escape, else its decoded
    /// text to `escaped`.
    public mutating func string(raw: (UnsafeBufferPointer<UInt8>) throws -> Void, escaped: (String) throws -> Void) throws {
        try expect(UInt8(ascii: "\""))
        let start = offset
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                offset += 1
                return try raw(UnsafeBufferPointer(rebasing: bytes[start..<(offset - 1)]))
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw fail("control character in a string") }
            offset += 1
        }
        var scalars = String.UnicodeScalarView()
        var text = Array(bytes[start..<offset])
        while offset < bytes.count {
            let byte = bytes[offset]
            offset += 1
            switch byte {
            case UInt8(ascii: "\""):
                scalars.append(contentsOf: String(decoding: text, as: UTF8.self).unicodeScalars)
                return try escaped(String(scalars))
            case UInt8(ascii: "\\"):
                scalars.append(contentsOf: String(decoding: text, as: UTF8.self).unicodeScalars)
                text.removeAll(keepingCapacity: true)
                scalars.append(try escape())
            case 0..<0x20:
                offset -= 1
                throw fail("control character in a string")
            default:
                text.append(byte)
            }
        }
        throw fail("unterminated string")
    }

    private mutating func escape() throws -> Unicode.Scalar {
        guard offset < bytes.count else { throw fail("unterminated escape") }
        let byte = bytes[offset]
        offset += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let high = try hex4()
            if (0xD800..<0xDC00).contains(high) {
                guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                    throw fail("unpaired surrogate")
                }
                offset += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!
            }
            guard let scalar = Unicode.Scalar(high) else { throw fail("unpaired surrogate") }
            return scalar
        default:
            offset -= 1
            throw fail("invalid escape")
        }
    }

    private mutating func hex4() throws -> UInt32 {
        guard offset + 4 <= bytes.count else { throw fail("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        return value
    }

    /// True when the next value is a number (not consumed).
    public mutating func atNumber() -> Bool {
        guard let byte = peek() else { return false }
        return byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// Reads a JSON number.
    public mutating func number() throws -> Double {
        guard atNumber() else { throw fail("expected a number") }
        let start = offset
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        let digits = offset
        while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) { offset += 1 }
        guard offset > digits else { throw fail("expected a digit") }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            let fraction = offset
            while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) { offset += 1 }
            guard offset > fraction else { throw fail("expected a digit after '.'") }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            let exponent = offset
            while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) { offset += 1 }
            guard offset > exponent else { throw fail("expected a digit in the exponent") }
        }
        // strtod needs a terminated copy; numbers are short.
        let length = offset - start
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer in
            for i in 0..<length { buffer[i] = CChar(bitPattern: bytes[start + i]) }
            buffer[length] = 0
            return strtod(buffer.baseAddress!, nil)
        }
    }

    /// True (and consumed) when the next value is `null`.
    public mutating func consumeNull() -> Bool { consumeLiteral("null") }

    private mutating func consumeLiteral(_ literal: StaticString) -> Bool {
        guard peek() != nil, offset + literal.utf8CodeUnitCount <= bytes.count else { return false }
        for i in 0..<literal.utf8CodeUnitCount where bytes[offset + i] != literal.utf8Start[i] { return false }
        offset += literal.utf8CodeUnitCount
        return true
    }

    /// Skips any one value.
    public mutating func skipValue(depth: Int = 0) throws {
        guard depth < 64 else { throw fail("nested too deeply") }
        switch peek() {
        case UInt8(ascii: "\"")?: try string(raw: { _ in }, escaped: { _ in })
        case UInt8(ascii: "{")?: try object { scanner, _ in try scanner.skipValue(depth: depth + 1) }
        case UInt8(ascii: "[")?:
            offset += 1
            if consume(UInt8(ascii: "]")) { return }
            repeat { try skipValue(depth: depth + 1) } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"))
        default:
            if atNumber() { _ = try number(); return }
            guard consumeLiteral("true") || consumeLiteral("false") || consumeLiteral("null") else { throw fail("expected a JSON value") }
        }
    }
}
