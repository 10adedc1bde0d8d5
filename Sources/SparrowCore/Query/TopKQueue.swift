/// A scored document; a larger score ranks first, and equal scores rank the smaller id first.
public struct ScoredDoc: Sendable, Equatable {
    public var doc: UInt32
    public var score: UInt64

    public init(doc: UInt32, score: UInt64) {
        self.doc = doc
        self.score = score
    }

    /// True when `self` ranks strictly before `other`.
    @inline(__always)
    public func ranksBefore(_ other: ScoredDoc) -> Bool {
        score != other.score ? score > other.score : doc < other.doc
    }
}

/// The best `k` documents seen so far: a binary min-heap whose root is the weakest kept entry.
public struct TopKQueue: Sendable {
    public let k: Int
    private var heap: [ScoredDoc] = []

    public init(k: Int) {
        precondition(k >= 0, "k must not be negative")
        self.k = k
        heap.reserveCapacity(min(k, 1 << 16))
    }

    /// A score a document must beat (strictly) to enter; 0 until the queue is full, so only
    /// documents with a positive score are ever kept.
    @inline(__always)
    public var threshold: UInt64 { heap.count < k ? 0 : heap[0].score }

    /// True once `k` documents are held.
    public var isFull: Bool { heap.count >= k }

    /// Offers a document; returns true when it was kept.
    @discardableResult
    public mutating func insert(_ entry: ScoredDoc) -> Bool {
        guard k > 0, entry.score > 0 else { return false }
        if heap.count < k {
            heap.append(entry)
            siftUp(heap.count - 1)
            return true
        }
        guard entry.ranksBefore(heap[0]) else { return false }
        heap[0] = entry
        siftDown(0)
        return true
    }

    /// The kept documents, best first.
    public func sorted() -> [ScoredDoc] {
        heap.sorted { $0.ranksBefore($1) }
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[parent].ranksBefore(heap[child]) else { return }
            heap.swapAt(parent, child)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var weakest = left
            let right = left + 1
            if right < heap.count && heap[left].ranksBefore(heap[right]) { weakest = right }
            guard heap[parent].ranksBefore(heap[weakest]) else { return }
            heap.swapAt(parent, weakest)
            parent = weakest
        }
    }
}
