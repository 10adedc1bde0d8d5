import SparrowCore
import Testing

@Test func postingBlocksRoundTripAndChainAcrossBlocks() throws {
    var rng = SplitMix64(seed: 11)
    var ids: [UInt32] = []
    var doc: UInt32 = 0
    for _ in 0..<300 {
        doc += UInt32.random(in: 1...100_000, using: &rng)
        ids.append(doc)
    }
    let codes = ids.map { _ in UInt8.random(in: 1...255, using: &rng) }
    var docs: [UInt32] = []
    var weights: [UInt8] = []
    for start in stride(from: 0, to: ids.count, by: PostingList.blockSize) {
        let end = min(start + PostingList.blockSize, ids.count)
        try PostingBlockCodec.decode(PostingBlockCodec.encode(docs: ids[start..<end], weights: codes[start..<end]), docs: &docs, weights: &weights)
    }
    #expect(docs == ids)
    #expect(weights == codes)
}

@Test func everyFlippedBitInABlockIsDetected() {
    let block = PostingBlockCodec.encode(docs: [3, 9, 4000, 70000], weights: [5, 200, 1, 9])
    for index in block.indices {
        for bit in 0..<8 {
            var damaged = block
            damaged[index] ^= 1 << UInt8(bit)
            var docs: [UInt32] = []
            var weights: [UInt8] = []
            #expect(throws: CorruptData.self) { try PostingBlockCodec.decode(damaged, docs: &docs, weights: &weights) }
        }
    }
    var docs: [UInt32] = []
    var weights: [UInt8] = []
    #expect(throws: CorruptData.self) { try PostingBlockCodec.decode(Array(block.dropLast(3)), docs: &docs, weights: &weights) }
}

@Test func forwardVectorsAndTermHeadersRoundTrip() throws {
    let encoded = ForwardVectorCodec.encode(terms: [0, 5, 30521], codes: [1, 255, 17])
    let decoded = try ForwardVectorCodec.decode(encoded)
    #expect(decoded.terms == [0, 5, 30521])
    #expect(decoded.codes == [1, 255, 17])
    let header = TermHeader(documentFrequency: 1_000_000, maxWeight: 200, blocks: 7813)
    #expect(try TermHeader.decode(header.encoded()) == header)
}

/// Found by reading the code: a forward vector whose CRC is valid but whose term gaps pass 2^32
/// trapped on overflow instead of being refused as damaged.
@Test func forwardVectorWhoseTermsOverflowIsCorruptNotACrash() {
    var record: [UInt8] = []
    ByteCodec.appendVarint(2, to: &record)
    ByteCodec.appendVarint(UInt32.max - 1, to: &record)
    record.append(9)
    ByteCodec.appendVarint(5, to: &record)
    record.append(9)
    ByteCodec.appendChecksum(to: &record)
    #expect(throws: CorruptData("term id past 2^32")) { try ForwardVectorCodec.decode(record) }
}
