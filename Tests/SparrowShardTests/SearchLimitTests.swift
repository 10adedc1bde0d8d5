import Foundation
import Logging
import NIOPosix
import SparrowShard
import SparrowStorage
import SparrowWire
import Testing

/// A search's size is capped and its deadline holds during the work: a batch stops between
/// queries once its deadline has passed, instead of holding the event loop for all of them.
@Suite struct SearchLimitTests {
    func withNode(_ body: (RPCClient) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "sparrow-node-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let records = (0..<4000).map { doc in
            TokenVectorRecord(id: "doc-\(doc)", vector: Dictionary(uniqueKeysWithValues: (0..<40).map { ("t\(($0 * 7 + doc) % 300)", Float(1 + $0 % 5)) }))
        }
        try ShardBuilder.build(records: records, directory: directory + "/shards/shard-0", shardID: "shard-0")
        let node = try ShardNode(nodeID: "n", dataDirectory: directory, logger: Logger(label: "test"))
        // One event loop: every connection waits for whatever that loop is doing.
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await RPCServer.bind(Endpoint(host: "127.0.0.1", port: 0), service: node.routes, logger: Logger(label: "test"), group: loop)
        let client = RPCClient(server.address)
        do {
            try await body(client)
        } catch {
            await client.close()
            await server.shutdown()
            try await loop.shutdownGracefully()
            throw error
        }
        await client.close()
        await server.shutdown()
        try await loop.shutdownGracefully()
    }

    func batch(_ count: Int, terms: Int = 30) -> Sparrow_V1_BatchSearchRequest {
        var batch = Sparrow_V1_BatchSearchRequest()
        batch.shard = "shard-0"
        batch.k = 100
        batch.queries = (0..<count).map { n in
            var vector = Sparrow_V1_SparseVector()
            vector.terms = .init(Dictionary((0..<terms).map { ("t\(($0 * 13 + n) % max(300, terms))", Float(1)) }, uniquingKeysWith: { first, _ in first }))
            return vector
        }
        return batch
    }

    @Test func oversizedBatchesAndQueriesAreRefused() async throws {
        try await withNode { client in
            for (request, field) in [(batch(QueryLimits.maxBatch + 1), "queries:"), (batch(1, terms: QueryLimits.maxTerms + 1), "queries[0] has")] {
                do {
                    let _: Sparrow_V1_BatchSearchResponse = try await client.call(ShardMethod.batchSearch, request, timeout: .seconds(30))
                    Issue.record("an oversized batch was searched")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument && error.message.hasPrefix(field), "\(error)")
                }
            }
        }
    }

    @Test func aBatchStopsOnceItsDeadlinePasses() async throws {
        try await withNode { client in
            let full = batch(QueryLimits.maxBatch)
            let started = ContinuousClock.now
            let answered: Sparrow_V1_BatchSearchResponse = try await client.call(ShardMethod.batchSearch, full, timeout: .seconds(60))
            let whole = ContinuousClock.now - started
            #expect(answered.results.count == QueryLimits.maxBatch)
            do {
                let _: Sparrow_V1_BatchSearchResponse = try await client.call(ShardMethod.batchSearch, full, timeout: whole / 20)
                Issue.record("the whole batch was searched past its deadline")
            } catch let error as RPCError {
                #expect(error.code == .deadlineExceeded, "\(error)")
            }
            // The node stopped at the deadline: its only event loop answers again long before the
            // whole batch would have ended.
            let probe = ContinuousClock.now
            let _: Sparrow_V1_HealthResponse = try await client.call(ShardMethod.health, Sparrow_V1_HealthRequest(), timeout: .seconds(30))
            #expect(ContinuousClock.now - probe < whole / 2, "the health check waited \(ContinuousClock.now - probe); the whole batch takes \(whole)")
        }
    }

    /// A batch runs off the I/O event loop: a call sent after it on the same connection, to a
    /// server with one event loop, is answered while the batch is still searching.
    @Test func aBatchDoesNotHoldTheEventLoop() async throws {
        try await withNode { client in
            let full = batch(QueryLimits.maxBatch)
            let started = ContinuousClock.now
            let _: Sparrow_V1_BatchSearchResponse = try await client.call(ShardMethod.batchSearch, full, timeout: .seconds(60))
            let whole = ContinuousClock.now - started
            let running = Task { () throws -> Int in
                let answered: Sparrow_V1_BatchSearchResponse = try await client.call(ShardMethod.batchSearch, full, timeout: .seconds(60))
                return answered.results.count
            }
            try await Task.sleep(for: whole / 10)
            let probe = ContinuousClock.now
            let _: Sparrow_V1_HealthResponse = try await client.call(ShardMethod.health, Sparrow_V1_HealthRequest(), timeout: .seconds(30))
            let waited = ContinuousClock.now - probe
            #expect(try await running.value == QueryLimits.maxBatch)
            #expect(waited < whole / 4, "the health check waited \(waited) behind a batch that takes \(whole)")
        }
    }
}
