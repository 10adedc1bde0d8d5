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
    /// Searches that can share a batch: same replica, shard, k, filter and build.
    struct Key: Hashable {
        var node: String
        var shard: String
        var k: UInt32
        var filter: [Sparrow_V1_Field]
        var build: String
    }

    /// A search waiting for a slot.
    struct Waiter {
        var query: [Sparrow_V1_TermWeight]
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Ticket, any Error>
        var timer: Scheduled<Void>?
    }

    /// How a waiting search ends: sent by its caller (a slot came free) or answered in a batch.
    enum Ticket {
        case send
        case answered(Sparrow_V1_SearchResponse)
    }

    private let queue: Mutex<CoalescingQueue<Key, Waiter>>
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
        let key = Key(node: node, shard: request.shard, k: request.k, filter: request.filter, build: request.build)
        if queue.withLock({ $0.start(key) }) {
            return try await sendAndRelease(request, key: key, client: client, deadline: deadline)
        }
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let ticket = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enqueue(request, key: key, id: id, deadline: deadline, continuation: continuation)
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
        _ request: Sparrow_V1_SearchRequest, key: Key, id: UInt64, deadline: ContinuousClock.Instant,
        continuation: CheckedContinuation<Ticket, any Error>
    ) {
        let left = deadline - .now
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .microseconds(max(0, left.microseconds))) {
            self.drop(key, id: id, RPCError.deadlineExceeded("waited \(left) for a free call to \(key.node) without getting one"))
        }
        let waiter = Waiter(query: request.query, deadline: deadline, continuation: continuation, timer: timer)
        let outcome: Result<Ticket, any Error>? = queue.withLock { queue in
            if Task.isCancelled { return .failure(RPCError(.cancelled, "the caller cancelled the call")) }
            if queue.start(key) { return .success(.send) }   // a slot came free meanwhile
            queue.wait(key, id: id, waiter)
            return nil
        }
        if let outcome {
            timer.cancel()
            continuation.resume(with: outcome)
        }
    }

    /// Fails a waiting search that has not gone out yet.
    private func drop(_ key: Key, id: UInt64, _ error: RPCError) {
        guard let waiter = queue.withLock({ $0.remove(key, id: id) }) else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(throwing: error)
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
            batch[0].continuation.resume(returning: .send)
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
            for (waiter, result) in zip(batch, response.results) { waiter.continuation.resume(returning: .answered(result)) }
        } catch {
            for waiter in batch { waiter.continuation.resume(throwing: error) }
        }
    }
}
