import Foundation
import SparrowCore
import SparrowWire

/// Online writes: each id goes to the shard the builder would have put it in, on every replica
/// of that shard, under the shard's gate, so that replicas apply a shard's writes in one order
/// and a move can switch between two writes. Acknowledged once every replica has it synced.
extension Coordinator {
    func write(_ request: Sparrow_V1_WriteRequest) async throws -> Sparrow_V1_WriteResponse {
        try requireOwner("writes")
        let cluster = self.cluster
        let (upserts, deletes) = try Self.route(request, in: cluster)
        let shards = Set(upserts.keys).union(deletes.keys)
        let outcomes = try await withThrowingTaskGroup(of: (written: Int, deleted: Int, epoch: UInt64).self) { group in
            for shard in shards {
                let (documents, ids) = (upserts[shard] ?? [], deletes[shard] ?? [])
                group.addTask { try await self.gate(shard).run { try await self.writeShard(shard, documents: documents, deletes: ids) } }
            }
            return try await group.reduce(into: [(written: Int, deleted: Int, epoch: UInt64)]()) { $0.append($1) }
        }
        var response = Sparrow_V1_WriteResponse()
        response.upserted = UInt32(outcomes.reduce(0) { $0 + $1.written })
        response.deleted = UInt32(outcomes.reduce(0) { $0 + $1.deleted })
        response.epoch = outcomes.map(\.epoch).max() ?? cluster.epoch
        return response
    }

    /// A write's upserts and deletes by the shard each id belongs to in `cluster`;
    /// `invalidArgument` for an empty id.
    public static func route(
        _ request: Sparrow_V1_WriteRequest, in cluster: ClusterMap
    ) throws -> (upserts: [String: [Sparrow_V1_Document]], deletes: [String: [String]]) {
        var upserts: [String: [Sparrow_V1_Document]] = [:]
        var deletes: [String: [String]] = [:]
        for document in request.upserts {
            guard !document.id.isEmpty else { throw RPCError.invalidArgument("upserts: a document has an empty id") }
            upserts[try shard(of: document.id, in: cluster), default: []].append(document)
        }
        for id in request.deletes {
            guard !id.isEmpty else { throw RPCError.invalidArgument("deletes: an id is empty") }
            deletes[try shard(of: id, in: cluster), default: []].append(id)
        }
        return (upserts, deletes)
    }

    /// The shard an external id belongs to: the builder's partitioning over shard-0…shard-N-1.
    static func shard(of id: String, in cluster: ClusterMap) throws -> String {
        let shard = ShardPartitioner.shardID(ShardPartitioner.shard(of: id, count: cluster.shards.count))
        guard cluster.shard(shard) != nil else {
            throw RPCError.failedPrecondition(
                "writes route ids over shards shard-0…shard-\(cluster.shards.count - 1) (the builder's partitioning), but this map's shards are \(cluster.shards.map(\.id).joined(separator: ", "))")
        }
        return shard
    }

    /// Writes to every replica the map names now (the caller holds the shard's gate).
    private func writeShard(_ shard: String, documents: [Sparrow_V1_Document], deletes: [String]) async throws -> (written: Int, deleted: Int, epoch: UInt64) {
        let cluster = self.cluster
        let replicas = cluster.shard(shard)?.replicas ?? []
        let results = await withTaskGroup(of: (node: String, deleted: Int, error: String?).self) { group in
            for node in replicas {
                group.addTask {
                    do {
                        let client = try self.client(node)
                        if !documents.isEmpty {
                            var upsert = Sparrow_V1_UpsertRequest()
                            upsert.shard = shard
                            upsert.documents = documents
                            upsert.epoch = cluster.epoch
                            _ = try await client.call(ShardMethod.upsert, upsert, timeout: .seconds(30), as: Sparrow_V1_UpsertResponse.self)
                        }
                        var deleted = 0
                        if !deletes.isEmpty {
                            var delete = Sparrow_V1_DeleteRequest()
                            delete.shard = shard
                            delete.ids = deletes
                            delete.epoch = cluster.epoch
                            deleted = Int(try await client.call(ShardMethod.delete, delete, timeout: .seconds(30), as: Sparrow_V1_DeleteResponse.self).deleted)
                        }
                        return (node, deleted, nil)
                    } catch {
                        return (node, 0, "\(error)")
                    }
                }
            }
            return await group.reduce(into: [(node: String, deleted: Int, error: String?)]()) { $0.append($1) }
        }
        let failed = results.filter { $0.error != nil }
        guard failed.isEmpty else {
            let done = results.filter { $0.error == nil }.map(\.node).sorted()
            throw RPCError(.unavailable, "shard \(shard): the write reached [\(done.joined(separator: ", "))] but not "
                + failed.map { "\($0.node) (\($0.error!))" }.sorted().joined(separator: ", ")
                + "; it is not acknowledged: retry it (upserts and deletes may be repeated)")
        }
        return (documents.count, results.map(\.deleted).max() ?? 0, cluster.epoch)
    }
}
