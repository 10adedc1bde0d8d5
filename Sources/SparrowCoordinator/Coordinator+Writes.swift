import Foundation
import Metrics
import SparrowCore
import SparrowCore
import SparrowWire

/// Online writes: each id goes to the shard the builder would have put it in, on every in-sync
/// replica of that shard, under the shard's gate, so that replicas apply a shard's writes in
/// one order and a move can switch between two writes. Acknowledged once at least one replica
/// has it synced and the map names every replica that missed it stale (see `InSyncSet`).
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

    /// Writes to the shard's in-sync replicas (the caller holds the shard's gate), sequenced
    /// after their common tail. Acknowledged once at least one has it synced and the map
    /// records every in-sync replica that missed it as stale (see `InSyncSet`).
    private func writeShard(_ shard: String, documents: [Sparrow_V1_Document], deletes: [String]) async throws -> (written: Int, deleted: Int, epoch: UInt64) {
        let after = try await inSyncTail(shard)
        let cluster = self.cluster
        let replicas = cluster.shard(shard)?.inSync ?? []
        let write = UInt64.random(in: 1...UInt64.max)
        let answers = await withTaskGroup(of: (node: String, outcome: Result<(tail: ChangeTail, deleted: Int), Error>).self) { group in
            for node in replicas {
                group.addTask {
                    do {
                        return (node, .success(try await self.write(documents, deletes: deletes, to: node, of: shard, after: after, id: write, epoch: cluster.epoch)))
                    } catch {
                        return (node, .failure(error))
                    }
                }
            }
            var answers: [String: Result<(tail: ChangeTail, deleted: Int), Error>] = [:]
            for await answer in group { answers[answer.node] = answer.outcome }
            return replicas.map { (node: $0, outcome: answers[$0]!) }
        }
        let failures = answers.compactMap { answer -> String? in
            guard case .failure(let error) = answer.outcome else { return nil }
            return "\(answer.node) (\(error))"
        }
        guard let settled = InSyncSet.settle(answers.map { ($0.node, try? $0.outcome.get().tail) }) else {
            forgetTail(shard)
            throw RPCError(.unavailable, "shard \(shard): no in-sync replica took the write: \(failures.joined(separator: ", ")); it is not acknowledged: retry it (upserts and deletes may be repeated)")
        }
        if !settled.missed.isEmpty {
            do {
                try await markStale(settled.missed, of: shard, reason: failures.isEmpty ? "answered out of step" : failures.joined(separator: ", "))
            } catch {
                forgetTail(shard)
                throw RPCError(.unavailable, "shard \(shard): \(settled.missed.joined(separator: ", ")) missed the write and the map could not record it (\(error)); it is not acknowledged: retry it")
            }
        }
        remember(settled.tail, of: shard)
        let deleted = answers.compactMap { try? $0.outcome.get().deleted }.max() ?? 0
        return (documents.count, deleted, self.cluster.epoch)
    }

    /// Sends one write to one replica: the upserts, then the deletes, each after the tail the
    /// last left; returns the replica's new tail.
    private func write(
        _ documents: [Sparrow_V1_Document], deletes: [String], to node: String, of shard: String, after: ChangeTail, id: UInt64, epoch: UInt64
    ) async throws -> (tail: ChangeTail, deleted: Int) {
        let client = try self.client(node)
        var tail = after
        if !documents.isEmpty {
            var upsert = Sparrow_V1_UpsertRequest()
            upsert.shard = shard
            upsert.documents = documents
            upsert.epoch = epoch
            (upsert.after, upsert.afterWrite, upsert.write) = (tail.sequence, tail.write, id)
            let response = try await client.call(ShardMethod.upsert, upsert, timeout: .seconds(30), as: Sparrow_V1_UpsertResponse.self)
            tail = ChangeTail(sequence: response.lastChange, write: response.lastWrite)
        }
        var deleted = 0
        if !deletes.isEmpty {
            var delete = Sparrow_V1_DeleteRequest()
            delete.shard = shard
            delete.ids = deletes
            delete.epoch = epoch
            (delete.after, delete.afterWrite, delete.write) = (tail.sequence, tail.write, id)
            let response = try await client.call(ShardMethod.delete, delete, timeout: .seconds(30), as: Sparrow_V1_DeleteResponse.self)
            (tail, deleted) = (ChangeTail(sequence: response.lastChange, write: response.lastWrite), Int(response.deleted))
        }
        return (tail, deleted)
    }

    /// The in-sync replicas' common tail: remembered from the last write on this map, or asked
    /// of each of them (replicas that answer with another tail are marked stale).
    private func inSyncTail(_ shard: String) async throws -> ChangeTail {
        let cluster = self.cluster
        if let known = writeTails.withLock({ $0[shard] }), known.epoch == cluster.epoch { return known.tail }
        let replicas = cluster.shard(shard)?.inSync ?? []
        var request = Sparrow_V1_StatsRequest()
        request.shard = shard
        let stats = request
        let answers = await withTaskGroup(of: (node: String, tail: ChangeTail?, error: String?).self) { group in
            for node in replicas {
                group.addTask {
                    do {
                        guard let held = try await self.client(node).call(ShardMethod.stats, stats, timeout: .seconds(10), as: Sparrow_V1_StatsResponse.self).shards.first else {
                            return (node, nil, "no copy of \(shard)")
                        }
                        return (node, ChangeTail(sequence: held.lastChange, write: held.lastWrite), nil)
                    } catch {
                        return (node, nil, "\(error)")
                    }
                }
            }
            var answers: [String: (tail: ChangeTail?, error: String?)] = [:]
            for await answer in group { answers[answer.node] = (answer.tail, answer.error) }
            return replicas.map { (node: $0, tail: answers[$0]!.tail, error: answers[$0]!.error) }
        }
        guard let reconciled = InSyncSet.reconcile(answers.map { ($0.node, $0.tail) }) else {
            throw RPCError(.unavailable, "shard \(shard): no in-sync replica answered: "
                + answers.map { "\($0.node) (\($0.error ?? "?"))" }.joined(separator: ", ") + "; the write is not acknowledged: retry it")
        }
        if !reconciled.behind.isEmpty {
            try await markStale(reconciled.behind, of: shard, reason: "its change log does not end at \(reconciled.tail)")
        }
        remember(reconciled.tail, of: shard)
        return reconciled.tail
    }

    private func remember(_ tail: ChangeTail, of shard: String) {
        let epoch = cluster.epoch
        writeTails.withLock { $0[shard] = (epoch, tail) }
    }

    private func forgetTail(_ shard: String) {
        _ = writeTails.withLock { $0.removeValue(forKey: shard) }
    }

    /// Records in the map that `nodes` missed writes of `shard` (epoch + 1), then starts their
    /// catch-up where their node is up.
    func markStale(_ nodes: [String], of shard: String, reason: String) async throws {
        try await update { map in
            guard let index = map.shards.firstIndex(where: { $0.id == shard }) else { return }
            map.shards[index].markStale(nodes)
        }
        for node in nodes {
            logger.warning("replica stale: it missed writes, and serves nothing until it has caught up",
                           metadata: ["shard.id": "\(shard)", "node.id": "\(node)", "error": "\(reason)", "cluster.epoch": "\(cluster.epoch)"])
            Counter(label: "sparrow_coordinator_replicas_marked_stale_total").increment()
        }
        repairStaleReplicas()
    }
}
