/// MaxScore (Turtle & Flood) with per-block upper bounds.
///
/// Cursors are ordered by their list's largest contribution. The shortest prefix whose summed
/// bounds cannot beat the current threshold is *non-essential*: a document found only there
/// cannot enter the top k, so candidates come from the essential lists alone (document at a
/// time, ascending ids). A candidate's non-essential terms are then probed from the strongest
/// down, and dropped as soon as its score plus the remaining block-max bounds cannot beat the
/// threshold. Candidates arrive in ascending id order, so an equal score never displaces an
/// earlier (smaller) id, which keeps ties exactly as the oracle breaks them.
public struct BlockMaxMaxScore: SearchAlgorithm {
    public init() {}

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
        var threshold: UInt64 = 0

        var candidate = cursors.lazy.map(\.doc).min()!
        while candidate != PostingCursor.end {
            var score: UInt64 = 0
            var nextCandidate = PostingCursor.end
            for i in firstEssential..<cursors.count {
                if cursors[i].doc == candidate {
                    score += cursors[i].score
                    cursors[i].next()
                }
                nextCandidate = min(nextCandidate, cursors[i].doc)
            }
            if filter.map({ $0.contains(candidate) }) ?? true {
                // Non-essential terms, strongest first, while the bounds can still beat the threshold.
                var pruned = false
                var i = firstEssential - 1
                while i >= 0 {
                    let rest = i > 0 ? upperBound[i - 1] : 0
                    let bound = cursors[i].blockMaxScore(at: candidate)
                    if score + bound + rest <= threshold {
                        pruned = true
                        break
                    }
                    cursors[i].advance(to: candidate)
                    if cursors[i].doc == candidate { score += cursors[i].score }
                    i -= 1
                }
                if !pruned && top.insert(ScoredDoc(doc: candidate, score: score)) {
                    threshold = top.threshold
                    while firstEssential < cursors.count && upperBound[firstEssential] <= threshold {
                        firstEssential += 1
                    }
                }
            }
            candidate = nextCandidate
            if firstEssential == cursors.count { break }
        }
        return top.sorted()
    }
}
