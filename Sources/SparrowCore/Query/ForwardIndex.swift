import Synchronization

/// Each document's terms and weight codes, contiguous in memory: the exact score of one
/// document costs a pass over its own postings (`ApproximateSearch` scores its candidates so).
/// Built from an `InvertedIndex` by transposing it; 3 bytes a posting while every term id fits
/// in 16 bits (always for a WordPiece vocabulary), 5 otherwise.
public final class ForwardIndex: Sendable {
    /// Document `d`'s postings are `offsets[d]..<offsets[d + 1]`.
    let offsets: [Int]
    let narrowTerms: [UInt16]
    let wideTerms: [UInt32]
    let codes: [UInt8]
    /// One past the largest term id.
    let termLimit: Int
    private let pool = Mutex<[[UInt16]]>([])

    public init(_ index: InvertedIndex) {
        let documents = index.documentCount
        var counts = [Int](repeating: 0, count: documents + 1)
        var termLimit = 0
        for (term, list) in index.lists {
            termLimit = max(termLimit, Int(term) + 1)
            for doc in list.docs { counts[Int(doc) + 1] += 1 }
        }
        for d in 0..<documents { counts[d + 1] += counts[d] }
        let total = counts[documents]
        let narrow = termLimit <= Int(UInt16.max) + 1
        var narrowTerms = [UInt16](repeating: 0, count: narrow ? total : 0)
        var wideTerms = [UInt32](repeating: 0, count: narrow ? 0 : total)
        var codes = [UInt8](repeating: 0, count: total)
        var next = counts
        for (term, list) in index.lists {
            for (doc, code) in zip(list.docs, list.weights) {
                let slot = next[Int(doc)]
                next[Int(doc)] = slot + 1
                if narrow { narrowTerms[slot] = UInt16(term) } else { wideTerms[slot] = term }
                codes[slot] = code
            }
        }
        offsets = counts
        self.narrowTerms = narrowTerms
        self.wideTerms = wideTerms
        self.codes = codes
        self.termLimit = termLimit
    }

    public var documentCount: Int { offsets.count - 1 }

    /// Bytes held in memory.
    public var residentBytes: Int { offsets.count * 8 + narrowTerms.count * 2 + wideTerms.count * 4 + codes.count + termLimit * 2 }

    /// Runs `body` with a scorer of `query`'s exact integer scores (as the exact algorithms
    /// compute them).
    public func withScorer<R>(for query: QuantizedQuery, _ body: (inout Scorer) -> R) -> R {
        var weights = pool.withLock { $0.popLast() } ?? [UInt16](repeating: 0, count: termLimit)
        defer {
            for term in query.terms where Int(term) < termLimit { weights[Int(term)] = 0 }
            pool.withLock { if $0.count < 8 { $0.append(weights) } }
        }
        for (term, weight) in zip(query.terms, query.weights) where Int(term) < termLimit {
            weights[Int(term)] = UInt16(truncatingIfNeeded: weight)
        }
        return weights.withUnsafeBufferPointer { queryWeights in
            offsets.withUnsafeBufferPointer { offsets in
                codes.withUnsafeBufferPointer { codes in
                    narrowTerms.withUnsafeBufferPointer { narrow in
                        wideTerms.withUnsafeBufferPointer { wide in
                            var scorer = Scorer(queryWeights: queryWeights, offsets: offsets, narrow: narrow, wide: wide, codes: codes)
                            return body(&scorer)
                        }
                    }
                }
            }
        }
    }

    /// Exact scores of documents for one query; valid inside `withScorer` only.
    public struct Scorer: CandidateScorer {
        let queryWeights: UnsafeBufferPointer<UInt16>
        let offsets: UnsafeBufferPointer<Int>
        let narrow: UnsafeBufferPointer<UInt16>
        let wide: UnsafeBufferPointer<UInt32>
        let codes: UnsafeBufferPointer<UInt8>

        @inline(__always)
        public mutating func score(_ doc: UInt32) -> UInt64 {
            let range = offsets[Int(doc)]..<offsets[Int(doc) + 1]
            var sum: UInt64 = 0
            if narrow.isEmpty {
                for i in range { sum &+= UInt64(queryWeights[Int(wide[i])]) &* UInt64(codes[i]) }
            } else {
                for i in range { sum &+= UInt64(queryWeights[Int(narrow[i])]) &* UInt64(codes[i]) }
            }
            return sum
        }
    }
}

/// Gives a candidate document's exact integer score for the query being searched.
public protocol CandidateScorer {
    mutating func score(_ doc: UInt32) -> UInt64
}
