import Metrics
import NIOCore
import NIOPosix
import SparrowWire
import Synchronization

/// Sends the coordinator's shard searches, coalescing concurrent ones to the same shard
/// replica into one `BatchSearch` call (see `CoalescingQueue`): at most `limit` calls per
/// replica are in flight, and the searches that arrive meanwhile go out together when one
/// comes back. Searches asking for an explanation always go out on their own.
final class SearchBatcher: Sendable {
    /// Searches that can share a batch: same replica, shard, k, filter, build and mode.
    struct Key: Hashable {
        var node: String
        var shard: String
        var k: UInt32
        var filter: [Sparrow_V1_Field]
        var build: String
        var mode: Sparrow_V1_SearchMode
    }

    /// A search waiting for a slot (its continuation is in `waiting`, under its id).
    struct Waiter {
        var id: UInt64
        var query: [Sparrow_V1_TermWeight]
        var deadline: ContinuousClock.Instant
        var timer: Scheduled<Void>?
    }

    /// How a waiting search ends: sent by its caller (a slot came free) or answered in a batch.
    enum Ticket {
        case send
        case answered(Sparrow_V1_SearchResponse)
    }

    private let queue: Mutex<CoalescingQueue<Key, Waiter>>
    /// The continuation of every waiting search until it is resumed, once: by a free slot, by its
    /// batch's answer, or by its caller giving up, whichever comes first. A search cancelled while
    /// its batch is on the wire (its call was hedged elsewhere) returns at once.
    private let waiting = Mutex<[UInt64: CheckedContinuation<Ticket, any Error>]>([:])
    private let nextID = Atomic<UInt64>(1)
    private let batchedCount = Atomic<Int>(0)
    private let batchedMetric = Counter(label: "sparrow_coordinator_batched_searches_total")

    init(limit: Int, maxBatch: Int = 64) {
        queue = Mutex(CoalescingQueue(limit: limit, maxBatch: maxBatch))
    }

    /// Shard searches answered as part of a batch so far.
    var batched: Int { batchedCount.load(ordering: .relaxed) }

    /// Searches `request.shard` on `node` through `client` before `deadline`.
    func search(
        _ request: Sparrow_V1_SearchRequest, node: String, client: RPCClient, deadline: ContinuousClock.Instant
    ) async throws -> Sparrow_V1_SearchResponse {
        if request.explain {
            return try await client.call(ShardMethod.search, request, timeout: deadline - .now)
        }
        let key = Key(node: node, shard: request.shard, k: request.k, filter: request.filter, build: request.build, mode: request.mode)
        if queue.withLock({ $0.start(key) }) {
            return try await sendAndRelease(request, key: key, client: client, deadline: deadline)
        }
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let ticket = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enqueue(request, key: key, id: id, deadline: deadline, client: client, continuation: continuation)
            }
        } onCancel: {
            self.drop(key, id: id, RPCError(.cancelled, "the caller cancelled the call"))
        }
        switch ticket {
        case .send: return try await sendAndRelease(request, key: key, client: client, deadline: deadline)
        case .answered(let response): return response
        }
    }

    private func enqueue(
        _ request: Sparrow_V1_SearchRequest, key: Key, id: UInt64, deadline: ContinuousClock.Instant, client: RPCClient,
        continuation: CheckedContinuation<Ticket, any Error>
    ) {
        let left = deadline - .now
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .microseconds(max(0, left.microseconds))) {
            self.drop(key, id: id, RPCError.deadlineExceeded("waited \(left) for a free call to \(key.node) without getting one"))
        }
        let waiter = Waiter(id: id, query: request.query, deadline: deadline, timer: timer)
        waiting.withLock { $0[id] = continuation }
        let outcome: Result<Ticket, any Error>? = queue.withLock { queue in
            if Task.isCancelled { return .failure(RPCError(.cancelled, "the caller cancelled the call")) }
            if queue.start(key) { return .success(.send) }   // a slot came free meanwhile
            queue.wait(key, id: id, waiter)
            return nil
        }
        if let outcome {
            timer.cancel()
            give(outcome, to: id, key: key, client: client)
        }
    }

    /// Resumes waiting search `id`, unless something resumed it already: then false.
    @discardableResult
    private func resume(_ id: UInt64, with outcome: Result<Ticket, any Error>) -> Bool {
        guard let continuation = waiting.withLock({ $0.removeValue(forKey: id) }) else { return false }
        continuation.resume(with: outcome)
        return true
    }

    /// Resumes `id` with `outcome`; a slot (`.send`) that its search no longer wants (it was
    /// cancelled meanwhile) goes to the next one waiting, so no slot is lost.
    private func give(_ outcome: Result<Ticket, any Error>, to id: UInt64, key: Key, client: RPCClient) {
        if !resume(id, with: outcome), case .success(.send) = outcome { release(key, client: client) }
    }

    /// Fails a waiting search: taken out of the queue if it has not gone out yet, and answered
    /// now even if its batch is on the wire.
    private func drop(_ key: Key, id: UInt64, _ error: RPCError) {
        queue.withLock({ $0.remove(key, id: id) })?.timer?.cancel()
        resume(id, with: .failure(error))
    }

    private func sendAndRelease(
        _ request: Sparrow_V1_SearchRequest, key: Key, client: RPCClient, deadline: ContinuousClock.Instant
    ) async throws -> Sparrow_V1_SearchResponse {
        defer { release(key, client: client) }
        return try await client.call(ShardMethod.search, request, timeout: deadline - .now)
    }

    /// A call of `key` came back: the searches waiting by then go out in its slot, as one batch.
    private func release(_ key: Key, client: RPCClient) {
        let batch = queue.withLock { $0.finish(key) }
        guard !batch.isEmpty else { return }
        for waiter in batch { waiter.timer?.cancel() }
        if batch.count == 1 {
            give(.success(.send), to: batch[0].id, key: key, client: client)
            return
        }
        Task {
            await self.sendBatch(batch, key: key, client: client)
            self.release(key, client: client)
        }
    }

    private func sendBatch(_ batch: [Waiter], key: Key, client: RPCClient) async {
        var request = Sparrow_V1_BatchSearchRequest()
        request.shard = key.shard
        request.k = key.k
        request.filter = key.filter
        request.build = key.build
        request.mode = key.mode
        request.queries = batch.map { waiter in
            var vector = Sparrow_V1_SparseVector()
            vector.terms = waiter.query
            return vector
        }
        let deadline = batch.map(\.deadline).min()!
        do {
            let response = try await client.call(ShardMethod.batchSearch, request, timeout: deadline - .now, as: Sparrow_V1_BatchSearchResponse.self)
            guard response.results.count == batch.count else {
                throw RPCError(.internal, "\(key.node) answered \(batch.count) searches of \(key.shard) with \(response.results.count) results")
            }
            batchedCount.add(batch.count, ordering: .relaxed)
            batchedMetric.increment(by: batch.count)
            for (waiter, result) in zip(batch, response.results) { resume(waiter.id, with: .success(.answered(result))) }
        } catch {
            for waiter in batch { resume(waiter.id, with: .failure(error)) }
        }
    }
}
