import Foundation
import NIOPosix
import SparrowCore
import SparrowStorage
import SparrowWire

extension ShardNode {
    /// The node's RPC methods. Short reads (a search: well under a millisecond on the largest
    /// shards we measure) run as soon as they are read off the connection (see
    /// `RPCRoutes.immediate`); a `BatchSearch` (up to 1,024 searches) runs on NIO's blocking pool,
    /// one thread per core, so that it never holds an I/O event loop; writes and shard transfers
    /// each run in a task of their own.
    public var routes: RPCRoutes {
        var routes = RPCRoutes()
        routes.immediate(ShardMethod.search) { (request: Sparrow_V1_SearchRequest, _) in try self.search(request) }
        routes.on(ShardMethod.batchSearch) { (request: Sparrow_V1_BatchSearchRequest, deadline) in
            try await NIOThreadPool.singleton.runIfActive { try self.batchSearch(request, deadline: deadline) }
        }
        routes.immediate(ShardMethod.explain) { (request: Sparrow_V1_ExplainRequest, _) in try self.explain(request) }
        routes.immediate(ShardMethod.getDocument) { (request: Sparrow_V1_GetDocumentRequest, _) in try self.getDocument(request) }
        routes.immediate(ShardMethod.stats) { (request: Sparrow_V1_StatsRequest, _) in try self.stats(request) }
        routes.immediate(ShardMethod.health) { (request: Sparrow_V1_HealthRequest, _) in try self.health(request) }
        routes.on(ShardMethod.upsert) { (request: Sparrow_V1_UpsertRequest, _) in try self.upsert(request) }
        routes.on(ShardMethod.delete) { (request: Sparrow_V1_DeleteRequest, _) in try self.delete(request) }
        routes.on(ShardMethod.bulkLoad) { (request: Sparrow_V1_BulkLoadRequest, _) in try self.bulkLoad(request) }
        routes.on(ShardMethod.compact) { (request: Sparrow_V1_CompactRequest, _) in try self.compact(request) }
        routes.on(ShardMethod.uploadBundle) { (request: Sparrow_V1_UploadBundleRequest, _) in try self.uploadBundle(request) }
        routes.on(ShardMethod.prepareBundle) { (request: Sparrow_V1_PrepareBundleRequest, _) in try self.prepareBundle(request) }
        routes.on(ShardMethod.activateBundle) { (request: Sparrow_V1_ActivateBundleRequest, _) in try self.activateBundle(request) }
        routes.on(ShardMethod.createCheckpoint) { (request: Sparrow_V1_CreateCheckpointRequest, _) in try self.createCheckpoint(request) }
        routes.on(ShardMethod.readCheckpoint) { (request: Sparrow_V1_ReadCheckpointRequest, _) in try self.readCheckpoint(request) }
        routes.on(ShardMethod.dropCheckpoint) { (request: Sparrow_V1_DropCheckpointRequest, _) in try self.dropCheckpoint(request) }
        routes.on(ShardMethod.receiveCheckpoint) { (request: Sparrow_V1_ReceiveCheckpointRequest, _) in try self.receiveCheckpoint(request) }
        routes.on(ShardMethod.installCheckpoint) { (request: Sparrow_V1_InstallCheckpointRequest, _) in try self.installCheckpoint(request) }
        routes.on(ShardMethod.readChanges) { (request: Sparrow_V1_ReadChangesRequest, _) in try self.readChanges(request) }
        routes.on(ShardMethod.applyChanges) { (request: Sparrow_V1_ApplyChangesRequest, _) in try self.applyChanges(request) }
        routes.on(ShardMethod.dropShard) { (request: Sparrow_V1_DropShardRequest, _) in try self.dropShard(request) }
        return routes
    }

    func search(_ request: Sparrow_V1_SearchRequest) throws -> Sparrow_V1_SearchResponse {
        let shard = try shard(request.shard, build: request.build)
        let (k, query) = try Self.checkedSearch(request)
        let mode = try request.mode.checked(field: "mode")
        let answer = try storage { try shard.search(query, k: k, filter: request.filter.values, explain: request.explain, mode: mode) }
        return Sparrow_V1_SearchResponse(answer, shard: request.shard, scale: shard.scoreScale(for: query))
    }

    /// Searches each query in turn, and stops (failing the call) once `deadline` has passed:
    /// nobody waits for the rest.
    func batchSearch(_ request: Sparrow_V1_BatchSearchRequest, deadline: ContinuousClock.Instant?) throws -> Sparrow_V1_BatchSearchResponse {
        let shard = try shard(request.shard, build: request.build)
        let k = try Self.checkedBatch(request)
        let mode = try request.mode.checked(field: "mode")
        let filter = request.filter.values
        var response = Sparrow_V1_BatchSearchResponse()
        response.results.reserveCapacity(request.queries.count)
        for (index, wire) in request.queries.enumerated() {
            if let deadline, ContinuousClock.now >= deadline {
                throw RPCError.deadlineExceeded("the deadline passed after \(index) of \(request.queries.count) queries")
            }
            let query = wire.terms.weights
            let answer = try storage { try shard.search(query, k: k, filter: filter, mode: mode) }
            response.results.append(Sparrow_V1_SearchResponse(answer, shard: request.shard, scale: shard.scoreScale(for: query)))
        }
        return response
    }

    func explain(_ request: Sparrow_V1_ExplainRequest) throws -> Sparrow_V1_ExplainResponse {
        let shard = try shard(request.shard, build: request.build)
        var response = Sparrow_V1_ExplainResponse()
        if let (score, contributions) = try storage({ try shard.explain(id: request.id, query: request.query.weights) }) {
            response.found = true
            response.score = score
            response.contributions = contributions.map(Sparrow_V1_Contribution.init)
        }
        return response
    }

    func getDocument(_ request: Sparrow_V1_GetDocumentRequest) throws -> Sparrow_V1_GetDocumentResponse {
        let shard = try shard(request.shard)
        var response = Sparrow_V1_GetDocumentResponse()
        if let record = try storage({ try shard.document(id: request.id) }) {
            response.found = true
            response.document.id = record.id
            response.document.vector = .init(record.vector)
            response.document.fields = .init(record.fields ?? [:])
        }
        return response
    }

    func stats(_ request: Sparrow_V1_StatsRequest) throws -> Sparrow_V1_StatsResponse {
        let waiting = prepared.withLock { $0.mapValues { $0.manifest.buildID ?? "" } }
        let serving = Set(shardIDs)
        let ids = request.shard.isEmpty ? serving.union(waiting.keys).sorted() : [request.shard]
        var response = Sparrow_V1_StatsResponse()
        response.shards = try ids.map { id in
            var stats = Sparrow_V1_ShardStats()
            if let preparedOnly = waiting[id], !serving.contains(id) {
                stats.shard = id
                stats.preparedBuildID = preparedOnly
            } else {
                stats = Self.stats(of: try shard(id), id: id)
                stats.preparedBuildID = waiting[id] ?? ""
            }
            return stats
        }
        return response
    }

    /// The node's state. The request's epoch is not adopted (see `admit(write:)`).
    func health(_ request: Sparrow_V1_HealthRequest) throws -> Sparrow_V1_HealthResponse {
        var response = Sparrow_V1_HealthResponse()
        response.epoch = knownEpoch
        response.node = nodeID
        response.shards = shardIDs
        response.serving = true
        return response
    }

    func upsert(_ request: Sparrow_V1_UpsertRequest) throws -> Sparrow_V1_UpsertResponse {
        try admit(write: request.epoch)
        let shard = try shard(request.shard)
        let records = try request.documents.map(Self.record)
        try admitDisk(Self.writeBytes(request.documents), what: "a write of \(records.count) documents to \(request.shard)")
        let write = Self.sequenced(after: request.after, afterWrite: request.afterWrite, write: request.write)
        let tail = try storage { try shard.upsert(records, as: write) }
        var response = Sparrow_V1_UpsertResponse()
        response.written = UInt32(records.count)
        (response.lastChange, response.lastWrite) = (tail.sequence, tail.write)
        return response
    }

    func delete(_ request: Sparrow_V1_DeleteRequest) throws -> Sparrow_V1_DeleteResponse {
        try admit(write: request.epoch)
        let shard = try shard(request.shard)
        try admitDisk(request.ids.reduce(0) { $0 + 64 + $1.utf8.count }, what: "a delete of \(request.ids.count) documents from \(request.shard)")
        let write = Self.sequenced(after: request.after, afterWrite: request.afterWrite, write: request.write)
        let (deleted, tail) = try storage { try shard.delete(ids: request.ids, as: write) }
        var response = Sparrow_V1_DeleteResponse()
        response.deleted = UInt32(deleted)
        (response.lastChange, response.lastWrite) = (tail.sequence, tail.write)
        return response
    }

    /// About what `documents` take on disk as written (the log, the forward index, postings).
    static func writeBytes(_ documents: [Sparrow_V1_Document]) -> Int {
        var bytes = 0
        for document in documents {
            let fields = document.fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
            bytes += 128 + 4 * document.id.utf8.count + 48 * document.vector.count + 2 * fields
        }
        return bytes
    }

    /// The write's place in the shard's order; nil for an unsequenced write (`write` 0).
    static func sequenced(after: UInt64, afterWrite: UInt64, write: UInt64) -> SequencedWrite? {
        write == 0 ? nil : SequencedWrite(after: ChangeTail(sequence: after, write: afterWrite), id: write)
    }

    /// How many changes a compaction leaves in the log beyond those a move still needs, so that
    /// a replica that missed writes for a while catches up from the log, not a whole copy.
    static let changeLogRetention: UInt64 = 100_000

    func compact(_ request: Sparrow_V1_CompactRequest) throws -> Sparrow_V1_CompactResponse {
        let shard = try shard(request.shard)
        let keep = [shard.lastChange - min(shard.lastChange, Self.changeLogRetention)] + checkpointedChanges(of: request.shard)
        try storage { try shard.compact(keepingChangesAfter: keep.min()) }
        var response = Sparrow_V1_CompactResponse()
        response.stats = Self.stats(of: shard, id: request.shard)
        return response
    }

    func bulkLoad(_ request: Sparrow_V1_BulkLoadRequest) throws -> Sparrow_V1_BulkLoadResponse {
        try admit(write: request.epoch)
        _ = try directory(of: request.shard)
        guard !request.uploadID.isEmpty else { throw RPCError.invalidArgument("bulk load needs an upload_id") }
        let records = try request.documents.map(Self.record)
        let bytes = records.reduce(0) { total, record in total + 64 + record.id.utf8.count + record.vector.keys.reduce(0) { $0 + 24 + $1.utf8.count } }
        try admitStaging(bytes, what: "bulk load \(RPCError.printable(request.uploadID)) of \(request.shard)")
        let key = request.shard + "/" + request.uploadID
        let upload = try uploads.withLock { uploads -> Upload? in
            var upload = uploads[key] ?? Upload(shard: request.shard, records: [], bytes: 0, touched: .now)
            guard upload.shard == request.shard else { throw RPCError.invalidArgument("upload \(request.uploadID) belongs to shard \(upload.shard)") }
            upload.records += records
            upload.bytes += bytes
            upload.touched = .now
            if request.commit {
                uploads[key] = nil
                return upload
            }
            uploads[key] = upload
            return nil
        }
        var response = Sparrow_V1_BulkLoadResponse()
        response.received = UInt32(records.count)
        if let upload {
            let scale = request.quantizationScale > 0 ? request.quantizationScale : nil
            let shard = try storage { try replace(request.shard, with: upload.records, quantizationScale: scale) }
            response.stats = Self.stats(of: shard, id: request.shard)
        }
        return response
    }

    // MARK: - Helpers

    /// A search's k and query vector, checked against `QueryLimits` before any work is done.
    public static func checkedSearch(_ request: Sparrow_V1_SearchRequest) throws -> (k: Int, query: [String: Float]) {
        let k = try validK(request.k)
        try QueryLimits.checkTerms(request.query.count, field: "query")
        return (k, request.query.weights)
    }

    /// A batch's k, with its size and every query's terms checked against `QueryLimits`.
    public static func checkedBatch(_ request: Sparrow_V1_BatchSearchRequest) throws -> Int {
        let k = try validK(request.k)
        guard request.queries.count <= QueryLimits.maxBatch else {
            throw RPCError.invalidArgument("queries: \(request.queries.count) in one batch; at most \(QueryLimits.maxBatch) are allowed")
        }
        for (index, query) in request.queries.enumerated() { try QueryLimits.checkTerms(query.terms.count, field: "queries[\(index)]") }
        return k
    }

    static func validK(_ k: UInt32) throws -> Int {
        try QueryLimits.checkK(Int(k))
        return Int(k)
    }

    /// Runs a storage call, turning its errors into wire statuses that name the cause.
    func storage<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as StorageError {
            switch error {
            case .invalidRequest: throw RPCError.invalidArgument(error.description)
            case .outOfSequence: throw RPCError.failedPrecondition("node \(nodeID): \(error)")
            default:
                logger.error("storage failure", metadata: ["storage.code": "\(error.code)", "storage.error": "\(error)"])
                throw RPCError(.internal, "\(error.code): \(error)")
            }
        }
    }

    /// A document as the storage takes it; `invalidArgument` for an empty id or a weight that
    /// is negative or not finite.
    public static func record(_ document: Sparrow_V1_Document) throws -> TokenVectorRecord {
        guard !document.id.isEmpty else { throw RPCError.invalidArgument("a document has an empty id") }
        for term in document.vector where !(term.weight.isFinite && term.weight >= 0) {
            throw RPCError.invalidArgument("document '\(document.id)': token '\(term.token)' has weight \(term.weight); weights must be finite and non-negative")
        }
        return TokenVectorRecord(id: document.id, vector: document.vector.weights, fields: document.fields.isEmpty ? nil : document.fields.values)
    }

    static func stats(of shard: Shard, id: String) -> Sparrow_V1_ShardStats {
        let stats = shard.stats
        let manifest = shard.manifest
        var wire = Sparrow_V1_ShardStats()
        wire.shard = id
        wire.documents = UInt64(stats.liveDocuments)
        wire.postings = UInt64(stats.postings)
        wire.terms = UInt64(stats.terms)
        wire.bytesOnDisk = UInt64(stats.bytesOnDisk)
        wire.residentBytes = UInt64(stats.residentBytes)
        wire.blockCacheBytes = UInt64(stats.blockCacheBytes)
        wire.epoch = UInt64(manifest.epoch)
        wire.quantizationScale = manifest.quantizationScale
        wire.encoderFingerprint = manifest.encoderFingerprint ?? ""
        wire.buildID = manifest.buildID ?? ""
        wire.lastChange = manifest.lastChange ?? 0
        wire.lastWrite = manifest.lastWrite ?? 0
        return wire
    }
}

extension Sparrow_V1_SearchResponse {
    /// A shard's answer: its hits, labelled with the shard, and the float value of one integer
    /// score unit (`scale`), by which the coordinator tells whether raw scores compare.
    public init(_ answer: ShardAnswer, shard: String, scale: Float) {
        self.init()
        self.scale = scale
        if let settings = answer.approximate {
            mode.approximate = true
            mode.threshold = settings.threshold
            mode.heapFactor = settings.heapFactor
        }
        hits = answer.hits.map { Sparrow_V1_Hit($0, shard: shard) }
    }
}
