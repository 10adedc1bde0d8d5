import Foundation
import SparrowCore
import SparrowStorage
import Testing

/// Ties rank by external id (`HitOrder`) in a shard whose documents sit in two segments: the
/// bulk-loaded index and the writes since, whose internal ids follow the order of the writes.
@Suite struct HitOrderTests {
    @Test func tiedDocumentsRankByExternalIdAcrossTheBulkIndexAndTheWrites() throws {
        let directory = NSTemporaryDirectory() + "sparrow-ties-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bulk = ["m", "q"].map { TokenVectorRecord(id: $0, vector: ["t1": 1, "other-\($0)": 0.5]) }
        try ShardBuilder.build(records: bulk, directory: directory, shardID: "s")
        let shard = try Shard(directory: directory)
        // Written after the load, in an order unlike their ids: "z", then "c", then "a".
        for id in ["z", "c", "a"] { try shard.upsert(TokenVectorRecord(id: id, vector: ["t1": 1])) }
        for k in 1...5 {
            let hits = try shard.search(["t1": 1], k: k).hits
            #expect(hits.map(\.id) == Array(["a", "c", "m", "q", "z"].prefix(k)), "k = \(k)")
        }
        #expect(HitOrder.precedes(UInt64(2), "b", UInt64(1), "a") && HitOrder.precedes(UInt64(1), "a", UInt64(1), "b"))
        #expect(!HitOrder.precedes(UInt64(1), "b", UInt64(1), "a"))
    }
}
