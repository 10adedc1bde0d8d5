import SparrowCore

/// Key layout of a shard's RocksDB database, format version 1. One column family; the first
/// byte says what a key holds, integers are big-endian so keys sort numerically:
///
/// | key                                   | value |
/// |---------------------------------------|-------|
/// | `D` term u32, doc u32                 | online posting: weight code u8 (not yet in blocks) |
/// | `E` external id (UTF-8)               | internal doc u32 BE |
/// | `F` doc u32                           | forward vector (`ForwardVectorCodec`) |
/// | `G` field, 0x00, value, 0x00, doc u32 | empty: stored-field index for filters |
/// | `I` doc u32                           | document record (`DocumentRecord`) |
/// | `L` sequence u64                      | change log: one online write (`LoggedChange`), trimmed by compaction |
/// | `M`                                   | manifest JSON (`ShardManifest`) |
/// | `P` term u32, block u32               | posting block (`PostingBlockCodec`) |
/// | `T` term u32                          | term header (`TermHeader`) |
/// | `V` term u32                          | token string of a term id |
/// | `W` token (UTF-8)                     | term id u32 BE |
/// | `X` doc u32                           | empty: document deleted (masked until compaction) |
enum ShardKeys {
    static let manifest: [UInt8] = [UInt8(ascii: "M")]

    static func key(_ tag: Character, _ numbers: UInt32...) -> [UInt8] {
        var key = [UInt8(ascii: tag.unicodeScalars.first!)]
        for n in numbers { ByteCodec.appendBigEndian(n, to: &key) }
        return key
    }

    static func key(_ tag: Character, sequence: UInt64) -> [UInt8] {
        var key = [UInt8(ascii: tag.unicodeScalars.first!)]
        ByteCodec.appendBigEndian(UInt32(truncatingIfNeeded: sequence >> 32), to: &key)
        ByteCodec.appendBigEndian(UInt32(truncatingIfNeeded: sequence), to: &key)
        return key
    }

    /// The u64 sequence of an `L` key.
    static func sequence(_ key: [UInt8]) -> UInt64 {
        UInt64(number(key, at: 1)) << 32 | UInt64(number(key, at: 5))
    }

    static func key(_ tag: Character, _ text: String) -> [UInt8] {
        [UInt8(ascii: tag.unicodeScalars.first!)] + Array(text.utf8)
    }

    static func fieldKey(field: String, value: String, doc: UInt32?) -> [UInt8] {
        var key = [UInt8(ascii: "G")] + Array(field.utf8) + [0] + Array(value.utf8) + [0]
        if let doc { ByteCodec.appendBigEndian(doc, to: &key) }
        return key
    }

    static func prefix(_ tag: Character) -> [UInt8] { [UInt8(ascii: tag.unicodeScalars.first!)] }

    /// Reads the big-endian u32 at `offset` of a key.
    static func number(_ key: [UInt8], at offset: Int) -> UInt32 {
        guard key.count >= offset + 4 else { return 0 }
        return key[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// A key in readable form for error messages, e.g. `P/term=1996/block=3`.
    static func describe(_ key: [UInt8]) -> String {
        guard let tag = key.first.map({ Character(Unicode.Scalar($0)) }) else { return "<empty>" }
        switch tag {
        case "P": return "P/term=\(number(key, at: 1))/block=\(number(key, at: 5))"
        case "D": return "D/term=\(number(key, at: 1))/doc=\(number(key, at: 5))"
        case "T", "V": return "\(tag)/term=\(number(key, at: 1))"
        case "F", "I", "X": return "\(tag)/doc=\(number(key, at: 1))"
        case "L": return "L/sequence=\(sequence(key))"
        default: return "\(tag)/" + String(decoding: key.dropFirst(), as: UTF8.self)
        }
    }
}

/// A document's record, key `I | doc`: its external id and stored fields, as JSON.
struct DocumentRecord: Codable, Equatable {
    var id: String
    var fields: [String: String]?
}
