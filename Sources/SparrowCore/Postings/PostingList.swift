/// One term's postings in memory: ascending document ids with 8-bit weights, cut into
/// blocks of `PostingList.blockSize` with each block's last id and largest weight, so that
/// query algorithms can skip whole blocks.
///
/// A class, not a struct of four arrays: a query takes one reference per term instead of
/// retaining four buffers, each a cache miss on a cold list (measured: retains were a fifth of
/// a small shard's query time).
public final class PostingList: Sendable {
    /// Postings per block (the last block may hold fewer).
    public static let blockSize = 128

    public let docs: [UInt32]
    public let weights: [UInt8]
    /// Last document id of each block.
    public let blockLastDoc: [UInt32]
    /// Largest weight code of each block.
    public let blockMaxWeight: [UInt8]
    /// Largest weight code of the whole list.
    public let maxWeight: UInt8

    /// Builds the list and its block metadata; `docs` must be strictly ascending.
    public init(docs: [UInt32], weights: [UInt8]) {
        precondition(docs.count == weights.count, "docs and weights differ in length")
        self.docs = docs
        self.weights = weights
        var lasts: [UInt32] = []
        var maxima: [UInt8] = []
        var start = 0
        while start < docs.count {
            let end = min(start + Self.blockSize, docs.count)
            lasts.append(docs[end - 1])
            maxima.append(weights[start..<end].max()!)
            start = end
        }
        blockLastDoc = lasts
        blockMaxWeight = maxima
        maxWeight = maxima.max() ?? 0
    }

    /// Number of postings (the term's document frequency).
    public var count: Int { docs.count }

    /// Bytes this list holds in memory.
    public var residentBytes: Int { docs.count * 5 + blockLastDoc.count * 5 }
}
