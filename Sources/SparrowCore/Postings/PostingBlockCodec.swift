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
///
/// Format version 2 (shard manifest format 2) orders a term's blocks by impact tier
/// (`ImpactTiers`): the blocks of tier 0 (the largest weights), then tier 1, and so on,
/// documents ascending within a tier, no block spanning two tiers; the term header gives each
/// tier's block count. Version 1 has one tier per term.
public enum PostingBlockCodec {
    public static let formatVersion = 2

    /// A term's postings (documents ascending) as blocks in impact tiers, and its header.
    public static func encodeTerm(docs: [UInt32], codes: [UInt8]) -> (blocks: [[UInt8]], header: TermHeader) {
        var docs = docs
        var codes = codes
        let ends = ImpactTiers.split(docs: &docs, codes: &codes)
        var blocks: [[UInt8]] = []
        var tierBlocks: [UInt32] = []
        var start = 0
        for end in ends {
            let first = blocks.count
            for blockStart in stride(from: start, to: end, by: PostingList.blockSize) {
                let blockEnd = min(blockStart + PostingList.blockSize, end)
                blocks.append(encode(docs: docs[blockStart..<blockEnd], weights: codes[blockStart..<blockEnd]))
            }
            tierBlocks.append(UInt32(blocks.count - first))
            start = end
        }
        let header = TermHeader(documentFrequency: UInt32(docs.count), maxWeight: codes.max() ?? 0, blocks: UInt32(blocks.count), tierBlocks: tierBlocks)
        return (blocks, header)
    }

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

    /// A term's list from its blocks in key order, checked against its header.
    public static func decodeTerm(_ blocks: [[UInt8]], header: TermHeader) throws -> PostingList {
        guard blocks.count == header.blocks else { throw CorruptData("\(blocks.count) blocks, the header says \(header.blocks)") }
        var docs: [UInt32] = []
        var weights: [UInt8] = []
        docs.reserveCapacity(Int(header.documentFrequency))
        weights.reserveCapacity(Int(header.documentFrequency))
        var tierEnds: [Int] = []
        var number = 0
        for count in header.tiers {
            for index in 0..<Int(count) {
                do {
                    try decode(blocks[number], docs: &docs, weights: &weights, startsTier: index == 0)
                } catch let error as CorruptData {
                    throw CorruptData("block \(number): \(error.reason)")
                }
                number += 1
            }
            tierEnds.append(docs.count)
        }
        guard docs.count == header.documentFrequency else {
            throw CorruptData("\(docs.count) postings, the header says \(header.documentFrequency)")
        }
        return PostingList(docs: docs, weights: weights, tierEnds: tierEnds)
    }

    /// Decodes a block, appending to `docs` and `weights`; throws on any inconsistency. Unless
    /// the block starts a tier, its first document must come after the last one in `docs`.
    public static func decode(_ record: [UInt8], docs: inout [UInt32], weights: inout [UInt8], startsTier: Bool = false) throws {
        var reader = ByteReader(try ByteReader.verifiedPayload(record))
        let count = Int(try reader.byte())
        guard count >= 1 && count <= PostingList.blockSize else { throw CorruptData("block count \(count) out of range") }
        let maxWeight = try reader.byte()
        var doc = try reader.varint()
        if !startsTier, let last = docs.last, doc <= last { throw CorruptData("block starts at doc \(doc), not after \(last)") }
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

/// The per-term header, key `T | term (u32 BE)`:
/// `df (varint) | max code (u8) | blocks (varint)`, then in format 2
/// `tiers (varint) | tiers × blocks of the tier (varint)`, which sum to `blocks`.
public struct TermHeader: Sendable, Equatable {
    public var documentFrequency: UInt32
    public var maxWeight: UInt8
    public var blocks: UInt32
    /// Blocks of each impact tier, in order (empty: format 1, one tier).
    public var tierBlocks: [UInt32]

    public init(documentFrequency: UInt32, maxWeight: UInt8, blocks: UInt32, tierBlocks: [UInt32] = []) {
        self.documentFrequency = documentFrequency
        self.maxWeight = maxWeight
        self.blocks = blocks
        self.tierBlocks = tierBlocks
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        ByteCodec.appendVarint(documentFrequency, to: &out)
        out.append(maxWeight)
        ByteCodec.appendVarint(blocks, to: &out)
        if !tierBlocks.isEmpty {
            ByteCodec.appendVarint(UInt32(tierBlocks.count), to: &out)
            for count in tierBlocks { ByteCodec.appendVarint(count, to: &out) }
        }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws -> TermHeader {
        var reader = ByteReader(bytes)
        var header = TermHeader(documentFrequency: try reader.varint(), maxWeight: try reader.byte(), blocks: try reader.varint())
        if !reader.isAtEnd {
            let tiers = try reader.varint()
            guard tiers >= 1, tiers <= header.blocks else { throw CorruptData("\(tiers) tiers for \(header.blocks) blocks") }
            for _ in 0..<tiers {
                let count = try reader.varint()
                guard count >= 1 else { throw CorruptData("an empty tier") }
                header.tierBlocks.append(count)
            }
            guard header.tierBlocks.reduce(0, { $0 + UInt64($1) }) == UInt64(header.blocks) else {
                throw CorruptData("tiers hold \(header.tierBlocks.reduce(0, { $0 + UInt64($1) })) blocks, the header \(header.blocks)")
            }
        }
        guard reader.isAtEnd else { throw CorruptData("trailing bytes after the term header") }
        return header
    }

    /// Blocks of each tier (one tier holding every block in format 1).
    public var tiers: [UInt32] { tierBlocks.isEmpty ? [blocks] : tierBlocks }
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
