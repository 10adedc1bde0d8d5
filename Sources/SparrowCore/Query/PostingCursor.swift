/// A forward-only position in one posting list with block skipping. `doc` is
/// `PostingCursor.end` once the list is exhausted.
public struct PostingCursor {
    public static let end = UInt32.max

    public let list: PostingList
    /// Query weight of the list's term.
    public let queryWeight: UInt64
    /// Largest contribution any posting of the list can make.
    public let maxScore: UInt64
    var position = 0

    public init(list: PostingList, queryWeight: UInt64) {
        self.list = list
        self.queryWeight = queryWeight
        maxScore = queryWeight * UInt64(list.maxWeight)
    }

    /// Current document id, or `end`.
    @inline(__always)
    public var doc: UInt32 { position < list.docs.count ? list.docs[position] : Self.end }

    /// Contribution of the current posting.
    @inline(__always)
    public var score: UInt64 { queryWeight * UInt64(list.weights[position]) }

    @inline(__always)
    public mutating func next() { position += 1 }

    /// Moves to the first posting with id ≥ `target`, skipping whole blocks by their last id.
    public mutating func advance(to target: UInt32) {
        guard doc < target else { return }
        var block = position / PostingList.blockSize
        let lastDocs = list.blockLastDoc
        while block < lastDocs.count && lastDocs[block] < target { block += 1 }
        guard block < lastDocs.count else {
            position = list.docs.count
            return
        }
        var index = max(position, block * PostingList.blockSize)
        let docs = list.docs
        while docs[index] < target { index += 1 }
        position = index
    }

    /// Upper bound of any contribution in `[start, end)`: the largest block maximum among the
    /// remaining blocks that can hold such ids (0 when none can).
    public func blockMaxScore(from start: UInt32, to end: UInt32) -> UInt64 {
        let lastDocs = list.blockLastDoc
        var block = position / PostingList.blockSize
        while block < lastDocs.count && lastDocs[block] < start { block += 1 }
        var best: UInt8 = 0
        while block < lastDocs.count {
            best = max(best, list.blockMaxWeight[block])
            if lastDocs[block] >= end { break }
            block += 1
        }
        return queryWeight * UInt64(best)
    }

    /// Upper bound of the contribution at `target` from the block that would hold it,
    /// without moving the cursor (0 when no remaining block can hold it).
    public func blockMaxScore(at target: UInt32) -> UInt64 {
        var block = position / PostingList.blockSize
        let lastDocs = list.blockLastDoc
        while block < lastDocs.count && lastDocs[block] < target { block += 1 }
        return block < lastDocs.count ? queryWeight * UInt64(list.blockMaxWeight[block]) : 0
    }
}
