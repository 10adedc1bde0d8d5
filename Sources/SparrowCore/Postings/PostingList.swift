/// One term's postings in memory, in impact tiers: tier 0 holds the postings with the largest
/// weights, each later tier smaller ones (`ImpactTiers`), and within a tier document ids
/// ascend. Each tier is cut into blocks of `PostingList.blockSize` with each block's last id and
/// largest weight, so that query algorithms can skip whole blocks; no block spans two tiers.
/// Exact algorithms read every tier (a document sits in at most one tier of a term); the
/// approximate one reads only the tiers whose weights can matter (`ApproximateSearch`).
///
/// A class, not a struct of arrays: a query takes one reference per term instead of
/// retaining each buffer, each a cache miss on a cold list (measured: retains were a fifth of
/// a small shard's query time).
public final class PostingList: Sendable {
    /// Postings per block (the last block of a tier may hold fewer).
    public static let blockSize = 128

    /// Where one tier's postings and blocks end, and the range of its weight codes.
    public struct Tier: Sendable, Equatable {
        /// One past the tier's last posting in `docs`.
        public let end: Int
        /// One past the tier's last block in `blockLastDoc`.
        public let blockEnd: Int
        public let minWeight: UInt8
        public let maxWeight: UInt8
    }

    /// Document ids, tier after tier, ascending within each tier.
    public let docs: [UInt32]
    public let weights: [UInt8]
    /// Last document id of each block.
    public let blockLastDoc: [UInt32]
    /// Largest weight code of each block.
    public let blockMaxWeight: [UInt8]
    public let tiers: [Tier]
    /// Largest weight code of the whole list.
    public let maxWeight: UInt8

    /// One tier: `docs` strictly ascending.
    public convenience init(docs: [UInt32], weights: [UInt8]) {
        self.init(docs: docs, weights: weights, tierEnds: docs.isEmpty ? [] : [docs.count])
    }

    /// Tiers ending at `tierEnds` (ascending, the last `docs.count`); within each tier `docs`
    /// is strictly ascending.
    public init(docs: [UInt32], weights: [UInt8], tierEnds: [Int]) {
        precondition(docs.count == weights.count, "docs and weights differ in length")
        precondition(tierEnds.last ?? 0 == docs.count, "tiers do not cover the postings")
        self.docs = docs
        self.weights = weights
        var lasts: [UInt32] = []
        var maxima: [UInt8] = []
        var tiers: [Tier] = []
        var start = 0
        for end in tierEnds {
            precondition(end > start, "empty tier")
            var blockStart = start
            while blockStart < end {
                let blockEnd = min(blockStart + Self.blockSize, end)
                lasts.append(docs[blockEnd - 1])
                maxima.append(weights[blockStart..<blockEnd].max()!)
                blockStart = blockEnd
            }
            tiers.append(Tier(end: end, blockEnd: lasts.count, minWeight: weights[start..<end].min()!, maxWeight: weights[start..<end].max()!))
            start = end
        }
        blockLastDoc = lasts
        blockMaxWeight = maxima
        self.tiers = tiers
        maxWeight = maxima.max() ?? 0
    }

    /// Number of postings (the term's document frequency).
    public var count: Int { docs.count }

    /// First posting and first block of tier `index`.
    @inline(__always)
    public func start(ofTier index: Int) -> (posting: Int, block: Int) {
        index == 0 ? (0, 0) : (tiers[index - 1].end, tiers[index - 1].blockEnd)
    }

    /// Bytes this list holds in memory.
    public var residentBytes: Int { docs.count * 5 + blockLastDoc.count * 5 + tiers.count * 18 }
}

/// How a term's postings split into impact tiers: tier `i` holds the codes of at least
/// `ceil(maxCode × ratio^(i+1))` that no earlier tier holds, the last tier everything below. Fixed
/// by the list's own largest code, so a builder and a loader agree without storing the bounds.
public enum ImpactTiers {
    /// Each tier's smallest code is this fraction of the one before's (1/√2).
    public static let ratio = 0.7071
    /// Tiers of a list at most.
    public static let maxTiers = 8

    /// The smallest code of each tier but the last, descending (codes above 0).
    public static func lowerBounds(maxCode: UInt8) -> [UInt8] {
        var bounds: [UInt8] = []
        var fraction = 1.0
        for _ in 1..<maxTiers {
            fraction *= ratio
            let bound = UInt8((Double(maxCode) * fraction).rounded(.up))
            if bound <= 1 { break }
            if bound != bounds.last { bounds.append(bound) }
        }
        return bounds
    }

    /// Reorders `docs` and `codes` (ascending documents) tier by tier, each tier keeping
    /// ascending documents; returns where each tier ends. Empty tiers are left out.
    public static func split(docs: inout [UInt32], codes: inout [UInt8]) -> [Int] {
        guard let maxCode = codes.max() else { return [] }
        let bounds = lowerBounds(maxCode: maxCode)
        guard !bounds.isEmpty else { return [docs.count] }
        var tierOf = [UInt8](repeating: 0, count: 256)
        var tier = bounds.count
        for code in 0...255 {
            while tier > 0 && code >= Int(bounds[tier - 1]) { tier -= 1 }
            tierOf[code] = UInt8(tier)
        }
        var counts = [Int](repeating: 0, count: bounds.count + 1)
        for code in codes { counts[Int(tierOf[Int(code)])] += 1 }
        var next = [Int](repeating: 0, count: counts.count)
        for t in 1..<counts.count { next[t] = next[t - 1] + counts[t - 1] }
        var sortedDocs = [UInt32](repeating: 0, count: docs.count)
        var sortedCodes = [UInt8](repeating: 0, count: codes.count)
        for (doc, code) in zip(docs, codes) {
            let t = Int(tierOf[Int(code)])
            sortedDocs[next[t]] = doc
            sortedCodes[next[t]] = code
            next[t] += 1
        }
        docs = sortedDocs
        codes = sortedCodes
        var ends: [Int] = []
        var end = 0
        for count in counts where count > 0 {
            end += count
            ends.append(end)
        }
        return ends
    }
}
