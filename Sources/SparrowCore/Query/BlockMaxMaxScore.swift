/// MaxScore (Turtle & Flood) over windows of document ids, with per-block upper bounds for
/// the non-essential lists (the shape of Lucene's MaxScoreBulkScorer).
///
/// Cursors are ordered by their list's largest contribution. The shortest prefix whose summed
/// bounds cannot beat the current threshold is *non-essential*: a document found only there
/// cannot enter the top k. For each window of `windowSize` ids the essential lists are scored
/// term at a time into a small accumulator; then each scored document whose score plus the
/// non-essential bound can beat the threshold probes the non-essential lists, strongest first,
/// stopping as soon as its score plus the remaining block-max bounds cannot. A window whose
/// block-max bounds summed over all lists cannot beat a full queue's threshold is skipped
/// without scoring. The partition is
/// fixed within a window (so no list is counted twice) and recomputed between windows.
/// Documents are offered in ascending id order, so an equal score never displaces a smaller
/// id, which keeps ties exactly as the oracle breaks them.
public struct BlockMaxMaxScore: SearchAlgorithm {
    public let windowSize: Int

    public init(windowSize: Int = 4096) {
        self.windowSize = windowSize
    }

    public func search(_ query: QuantizedQuery, in index: InvertedIndex, k: Int, filter: DocumentFilter?) -> [ScoredDoc] {
        var cursors = cursors(query, in: index).sorted { $0.maxScore < $1.maxScore }
        guard k > 0, !cursors.isEmpty else { return [] }
        // upperBound[i] = Σ maxScore of cursors[0...i]
        var upperBound = [UInt64](repeating: 0, count: cursors.count)
        var running: UInt64 = 0
        for i in cursors.indices {
            running += cursors[i].maxScore
            upperBound[i] = running
        }
        var top = TopKQueue(k: k)
        var firstEssential = 0
        var accumulator = [UInt64](repeating: 0, count: windowSize)

        while firstEssential < cursors.count {
            let windowStart = cursors[firstEssential...].lazy.map(\.doc).min()!
            if windowStart == PostingCursor.end { break }
            let windowEnd = windowStart &+ UInt32(windowSize) < windowStart ? UInt32.max : windowStart + UInt32(windowSize)
            let nonEssentialBound = firstEssential > 0 ? upperBound[firstEssential - 1] : 0
            if top.isFull {
                // Block-max bound of the whole window: skip it when nothing in it can enter.
                var windowBound = nonEssentialBound
                for i in firstEssential..<cursors.count {
                    windowBound += cursors[i].blockMaxScore(from: windowStart, to: windowEnd)
                }
                if windowBound <= top.threshold {
                    for i in firstEssential..<cursors.count { cursors[i].advance(to: windowEnd) }
                    continue
                }
            }
            var touched = 0
            accumulator.withUnsafeMutableBufferPointer { acc in
                for i in firstEssential..<cursors.count {
                    touched += Self.accumulate(&cursors[i], into: acc, from: windowStart, to: windowEnd)
                }
            }
            guard touched > 0 else { continue }
            for offset in 0..<windowSize where accumulator[offset] != 0 {
                var score = accumulator[offset]
                accumulator[offset] = 0
                let doc = windowStart + UInt32(offset)
                if let filter, !filter.contains(doc) { continue }
                if score + nonEssentialBound <= top.threshold { continue }
                var pruned = false
                var i = firstEssential - 1
                while i >= 0 {
                    let rest = i > 0 ? upperBound[i - 1] : 0
                    if score + cursors[i].blockMaxScore(at: doc) + rest <= top.threshold {
                        pruned = true
                        break
                    }
                    cursors[i].advance(to: doc)
                    if cursors[i].doc == doc { score += cursors[i].score }
                    i -= 1
                }
                if !pruned { top.insert(ScoredDoc(doc: doc, score: score)) }
            }
            let threshold = top.threshold
            while firstEssential < cursors.count && upperBound[firstEssential] <= threshold {
                firstEssential += 1
            }
        }
        return top.sorted()
    }

    /// Adds the cursor's postings in `[start, end)` to the window accumulator; returns how many.
    @inline(__always)
    static func accumulate(_ cursor: inout PostingCursor, into acc: UnsafeMutableBufferPointer<UInt64>, from start: UInt32, to end: UInt32) -> Int {
        let weight = cursor.queryWeight
        var position = cursor.position
        let first = position
        cursor.list.docs.withUnsafeBufferPointer { docs in
            cursor.list.weights.withUnsafeBufferPointer { codes in
                while position < cursor.endPosition {
                    let doc = docs[position]
                    if doc >= end { break }
                    acc[Int(doc &- start)] &+= weight &* UInt64(codes[position])
                    position += 1
                }
            }
        }
        cursor.position = position
        return position - first
    }
}
