/// Byte layout of one posting block, format version 1 (all stored under key
/// `P | term (u32 BE) | block number (u32 BE)`):
///
/// ```
/// offset  size      field
/// 0       1         count n (1...128)
/// 1       1         max weight code in the block
/// 2       varint    first document id (absolute)
/// ...     varint×(n-1)  gaps: doc[i] - doc[i-1] (each ≥ 1)
/// ...     n         weight codes, u8 each (weight = code × index scale)
/// end-4   4         CRC-32C of all preceding bytes, little-endian
/// ```
/// The block's last document id is recomputed from the gaps; the per-term header
/// (`T | term`) stores df, the list's max code and the block count (see `TermHeader`).
public enum PostingBlockCodec {
    public static let formatVersion = 1

    /// Encodes postings `docs[range]`, `weights[range]` as one block.
    public static func encode(docs: ArraySlice<UInt32>, weights: ArraySlice<UInt8>) -> [UInt8] {
        precondition(!docs.isEmpty && docs.count <= PostingList.blockSize && docs.count == weights.count)
        var out: [UInt8] = [UInt8(docs.count), weights.max()!]
        out.reserveCapacity(docs.count * 3 + 12)
        var previous: UInt32? = nil
        for doc in docs {
            ByteCodec.appendVarint(previous.map { doc - $0 } ?? doc, to: &out)
            previous = doc
        }
        out.append(contentsOf: weights)
        ByteCodec.appendChecksum(to: &out)
        return out
    }

    /// Decodes a block, appending to `docs` and `weights`; throws on any inconsistency.
    public static func decode(_ record: [UInt8], docs: inout [UInt32], weights: inout [UInt8]) throws {
        var reader = ByteReader(try ByteReader.verifiedPayload(record))
        let count = Int(try reader.byte())
        guard count >= 1 && count <= PostingList.blockSize else { throw CorruptData("block count \(count) out of range") }
        let maxWeight = try reader.byte()
        var doc = try reader.varint()
        if let last = docs.last, doc <= last { throw CorruptData("block starts at doc \(doc), not after \(last)") }
        docs.append(doc)
        for _ in 1..<count {
            let gap = try reader.varint()
            guard gap > 0, doc <= UInt32.max - gap else { throw CorruptData("invalid doc gap \(gap)") }
            doc += gap
            docs.append(doc)
        }
        let codes = try reader.bytes(count)
        guard codes.max() == maxWeight, codes.min()! > 0 else { throw CorruptData("weights disagree with the block header") }
        guard reader.isAtEnd else { throw CorruptData("trailing bytes after the block") }
        weights.append(contentsOf: codes)
    }
}

/// The per-term header, key `T | term (u32 BE)`: `df (varint) | max code (u8) | blocks (varint)`.
public struct TermHeader: Sendable, Equatable {
    public var documentFrequency: UInt32
    public var maxWeight: UInt8
    public var blocks: UInt32

    public init(documentFrequency: UInt32, maxWeight: UInt8, blocks: UInt32) {
        self.documentFrequency = documentFrequency
        self.maxWeight = maxWeight
        self.blocks = blocks
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        ByteCodec.appendVarint(documentFrequency, to: &out)
        out.append(maxWeight)
        ByteCodec.appendVarint(blocks, to: &out)
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws -> TermHeader {
        var reader = ByteReader(bytes)
        let header = TermHeader(documentFrequency: try reader.varint(), maxWeight: try reader.byte(), blocks: try reader.varint())
        guard reader.isAtEnd else { throw CorruptData("trailing bytes after the term header") }
        return header
    }
}

/// A document's forward vector, key `F | doc (u32 BE)`:
/// `n (varint) | n × (term gap varint, code u8) | CRC-32C`, terms ascending (first gap absolute).
public enum ForwardVectorCodec {
    public static func encode(terms: [UInt32], codes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        ByteCodec.appendVarint(UInt32(terms.count), to: &out)
        var previous: UInt32 = 0
        for (index, (term, code)) in zip(terms, codes).enumerated() {
            ByteCodec.appendVarint(index == 0 ? term : term - previous, to: &out)
            out.append(code)
            previous = term
        }
        ByteCodec.appendChecksum(to: &out)
        return out
    }

    public static func decode(_ record: [UInt8]) throws -> (terms: [UInt32], codes: [UInt8]) {
        var reader = ByteReader(try ByteReader.verifiedPayload(record))
        let count = Int(try reader.varint())
        var terms: [UInt32] = []
        var codes: [UInt8] = []
        var term: UInt32 = 0
        for index in 0..<count {
            let gap = try reader.varint()
            guard index == 0 || gap > 0 else { throw CorruptData("terms not ascending") }
            let (next, overflow) = term.addingReportingOverflow(gap)
            guard !overflow else { throw CorruptData("term id past 2^32") }
            term = next
            terms.append(term)
            codes.append(try reader.byte())
        }
        guard reader.isAtEnd else { throw CorruptData("trailing bytes after the vector") }
        return (terms, codes)
    }
}
