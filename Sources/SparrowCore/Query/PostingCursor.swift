/// A forward-only position in one tier of a posting list, with block skipping. `doc` is
/// `PostingCursor.end` once the tier is exhausted.
public struct PostingCursor {
    public static let end = UInt32.max

    public let list: PostingList
    /// Query weight of the list's term.
    public let queryWeight: UInt64
    /// Largest contribution any posting of the tier can make.
    public let maxScore: UInt64
    /// The tier's postings are `position..<endPosition` at the start; its blocks end at `endBlock`.
    public let endPosition: Int
    let firstPosition: Int
    let firstBlock: Int
    let endBlock: Int
    var position: Int

    public init(list: PostingList, tier: Int, queryWeight: UInt64) {
        self.list = list
        self.queryWeight = queryWeight
        maxScore = queryWeight * UInt64(list.tiers[tier].maxWeight)
        (firstPosition, firstBlock) = list.start(ofTier: tier)
        position = firstPosition
        endPosition = list.tiers[tier].end
        endBlock = list.tiers[tier].blockEnd
    }

    /// Current document id, or `end`.
    @inline(__always)
    public var doc: UInt32 { position < endPosition ? list.docs[position] : Self.end }

    /// Contribution of the current posting.
    @inline(__always)
    public var score: UInt64 { queryWeight * UInt64(list.weights[position]) }

    @inline(__always)
    public mutating func next() { position += 1 }

    /// The block that holds the current position.
    @inline(__always)
    var block: Int { firstBlock + (position - firstPosition) / PostingList.blockSize }

    /// Moves to the first posting with id ≥ `target`, skipping whole blocks by their last id.
    public mutating func advance(to target: UInt32) {
        guard doc < target else { return }
        var block = self.block
        let lastDocs = list.blockLastDoc
        while block < endBlock && lastDocs[block] < target { block += 1 }
        guard block < endBlock else {
            position = endPosition
            return
        }
        var index = max(position, firstPosition + (block - firstBlock) * PostingList.blockSize)
        let docs = list.docs
        while docs[index] < target { index += 1 }
        position = index
    }

    /// Upper bound of any contribution in `[start, end)`: the largest block maximum among the
    /// remaining blocks that can hold such ids (0 when none can).
    public func blockMaxScore(from start: UInt32, to end: UInt32) -> UInt64 {
        let lastDocs = list.blockLastDoc
        var block = self.block
        while block < endBlock && lastDocs[block] < start { block += 1 }
        var best: UInt8 = 0
        while block < endBlock {
            best = max(best, list.blockMaxWeight[block])
            if lastDocs[block] >= end { break }
            block += 1
        }
        return queryWeight * UInt64(best)
    }

    /// Upper bound of the contribution at `target` from the block that would hold it,
    /// without moving the cursor (0 when no remaining block can hold it).
    public func blockMaxScore(at target: UInt32) -> UInt64 {
        var block = self.block
        let lastDocs = list.blockLastDoc
        while block < endBlock && lastDocs[block] < target { block += 1 }
        return block < endBlock ? queryWeight * UInt64(list.blockMaxWeight[block]) : 0
    }
}
