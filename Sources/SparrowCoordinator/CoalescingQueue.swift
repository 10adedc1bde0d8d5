/// Which calls go out now and which wait to go out together, per key (one shard on one node):
/// at most `limit` calls of a key are in flight; a call that finds them all busy waits, and
/// when one comes back, the calls waiting by then (up to `maxBatch`) go out as one.
///
/// Under light load nothing waits, so latency is unchanged; under heavy load each call that
/// comes back carries many, and the per-call cost (two wake-ups and a system call on each
/// side) is shared. Pure bookkeeping: `SearchBatcher` does the I/O.
public struct CoalescingQueue<Key: Hashable, Waiter> {
    public let limit: Int
    public let maxBatch: Int
    private var inFlight: [Key: Int] = [:]
    private var waiting: [Key: [(id: UInt64, waiter: Waiter)]] = [:]

    public init(limit: Int, maxBatch: Int) {
        precondition(limit > 0 && maxBatch > 0, "a coalescing queue needs a positive limit and batch size")
        self.limit = limit
        self.maxBatch = maxBatch
    }

    /// Takes a slot for a call of `key` if one is free (the caller sends it now).
    public mutating func start(_ key: Key) -> Bool {
        let busy = inFlight[key, default: 0]
        guard busy < limit else { return false }
        inFlight[key] = busy + 1
        return true
    }

    /// Queues a call that found no free slot.
    public mutating func wait(_ key: Key, id: UInt64, _ waiter: Waiter) {
        waiting[key, default: []].append((id, waiter))
    }

    /// A call of `key` came back: the waiting calls that now go out together in its slot
    /// (oldest first), or none, and the slot is freed.
    public mutating func finish(_ key: Key) -> [Waiter] {
        guard let queued = waiting[key], !queued.isEmpty else {
            let busy = inFlight[key, default: 1] - 1
            inFlight[key] = busy > 0 ? busy : nil
            return []
        }
        let batch = queued.prefix(maxBatch)
        waiting[key] = queued.count > batch.count ? Array(queued.dropFirst(batch.count)) : nil
        return batch.map(\.waiter)
    }

    /// Takes a waiting call out of the queue (cancelled or past its deadline); nil if it has
    /// already gone out.
    public mutating func remove(_ key: Key, id: UInt64) -> Waiter? {
        guard let index = waiting[key]?.firstIndex(where: { $0.id == id }) else { return nil }
        let waiter = waiting[key]!.remove(at: index).waiter
        if waiting[key]!.isEmpty { waiting[key] = nil }
        return waiter
    }

    /// Calls of `key` in flight and waiting.
    public func load(_ key: Key) -> (inFlight: Int, waiting: Int) {
        (inFlight[key, default: 0], waiting[key]?.count ?? 0)
    }
}
