import Foundation
import SparrowCore
import SparrowIO
import SparrowStorage
import SparrowWire

/// Copying a shard to another node (a move's source and target sides). The source writes a
/// RocksDB checkpoint to `DATA/checkpoints/<shard>@<move>/` (its file list, with sizes and
/// CRC-32C, beside it as `<shard>@<move>.json`) and serves its files in chunks and its change
/// log; the target receives the files into `DATA/incoming/<shard>@<move>/`, installs them as
/// the shard, and replays the log. Each step can be repeated: a resumed move picks up where the
/// files and the target's last change stand.
extension ShardNode {
    private func moveDirectory(_ kind: String, shard: String, move: String) throws -> String {
        _ = try directory(of: shard)
        guard Self.isValidShardID(move) else { throw RPCError.invalidArgument("move id '\(move)' is not a safe name") }
        return ((dataDirectory as NSString).appendingPathComponent(kind) as NSString).appendingPathComponent("\(shard)@\(move)")
    }

    private func checkpointFile(_ directory: String, _ name: String) throws -> String {
        guard Self.isValidShardID(name) else { throw RPCError.invalidArgument("checkpoint file name '\(name)' is not a plain file name") }
        return (directory as NSString).appendingPathComponent(name)
    }

    func createCheckpoint(_ request: Sparrow_V1_CreateCheckpointRequest) throws -> Sparrow_V1_CreateCheckpointResponse {
        let directory = try moveDirectory("checkpoints", shard: request.shard, move: request.moveID)
        let listing = directory + ".json"
        if let data = FileManager.default.contents(atPath: listing) {
            return try Sparrow_V1_CreateCheckpointResponse(jsonUTF8Data: data)
        }
        let shard = try shard(request.shard)
        try? FileManager.default.removeItem(atPath: directory)   // an interrupted earlier attempt
        try FileManager.default.createDirectory(atPath: (directory as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var response = Sparrow_V1_CreateCheckpointResponse()
        response.lastChange = try storage { try shard.checkpoint(to: directory) }
        response.buildID = shard.manifest.buildID ?? ""
        response.files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted().map { name in
            var file = Sparrow_V1_CheckpointFile()
            file.name = name
            (file.size, file.checksum) = try Self.sizeAndChecksum(try checkpointFile(directory, name))
            return file
        }
        try AtomicOutputFile.write(try response.jsonString(), to: listing)
        logger.info("checkpoint written", metadata: [
            "shard.id": "\(request.shard)", "move.id": "\(request.moveID)", "checkpoint.files": "\(response.files.count)",
            "checkpoint.bytes": "\(response.files.reduce(0) { $0 + $1.size })", "shard.last_change": "\(response.lastChange)",
        ])
        return response
    }

    func readCheckpoint(_ request: Sparrow_V1_ReadCheckpointRequest) throws -> Sparrow_V1_ReadCheckpointResponse {
        let directory = try moveDirectory("checkpoints", shard: request.shard, move: request.moveID)
        let path = try checkpointFile(directory, request.name)
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw RPCError.notFound("node \(nodeID) has no checkpoint file \(request.name) of \(request.shard)@\(request.moveID)")
        }
        defer { try? file.close() }
        try file.seek(toOffset: request.offset)
        var response = Sparrow_V1_ReadCheckpointResponse()
        response.data = try file.read(upToCount: Int(min(request.length, 8 << 20))) ?? Data()
        return response
    }

    func dropCheckpoint(_ request: Sparrow_V1_DropCheckpointRequest) throws -> Sparrow_V1_DropCheckpointResponse {
        let directory = try moveDirectory("checkpoints", shard: request.shard, move: request.moveID)
        try? FileManager.default.removeItem(atPath: directory + ".json")
        try? FileManager.default.removeItem(atPath: directory)
        return .init()
    }

    func receiveCheckpoint(_ request: Sparrow_V1_ReceiveCheckpointRequest) throws -> Sparrow_V1_ReceiveCheckpointResponse {
        try admit(write: request.epoch)
        let directory = try moveDirectory("incoming", shard: request.shard, move: request.moveID)
        let path = try checkpointFile(directory, request.name)
        return try bundleLock.withLock {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: path) && !FileManager.default.createFile(atPath: path, contents: nil) {
                throw RPCError(.internal, "\(path): cannot create")
            }
            guard let handle = FileHandle(forWritingAtPath: path) else { throw RPCError(.internal, "\(path): cannot open for writing") }
            defer { try? handle.close() }
            var response = Sparrow_V1_ReceiveCheckpointResponse()
            response.received = try handle.seekToEnd()
            if request.offset == response.received && !request.data.isEmpty {
                try admitDisk(request.data.count, what: "the copy of \(request.shard)")
                try handle.write(contentsOf: request.data)
                response.received = try handle.offset()
            }
            return response
        }
    }

    func installCheckpoint(_ request: Sparrow_V1_InstallCheckpointRequest) throws -> Sparrow_V1_InstallCheckpointResponse {
        try admit(write: request.epoch)
        let incoming = try moveDirectory("incoming", shard: request.shard, move: request.moveID)
        return try bundleLock.withLock {
            var response = Sparrow_V1_InstallCheckpointResponse()
            if !FileManager.default.fileExists(atPath: incoming), wasInstalled(request), let installed = try? shard(request.shard) {
                response.stats = Self.stats(of: installed, id: request.shard)   // a repeated call
                return response
            }
            try Self.checkListing(request)
            let expected = Set(request.files.map(\.name))
            let received = Set((try? FileManager.default.contentsOfDirectory(atPath: incoming)) ?? [])
            for stale in received.subtracting(expected) { unlink(try checkpointFile(incoming, stale)) }   // of an earlier checkpoint
            guard received.isSuperset(of: expected) else {
                throw RPCError.failedPrecondition(
                    "\(request.shard)@\(request.moveID): node \(nodeID) lacks checkpoint files \(expected.subtracting(received).sorted().joined(separator: ", "))")
            }
            for file in request.files {
                let path = try checkpointFile(incoming, file.name)
                let (size, checksum) = try Self.sizeAndChecksum(path)
                guard size == file.size, checksum == file.checksum else {
                    unlink(path)
                    throw RPCError.failedPrecondition(
                        "\(request.shard)@\(request.moveID): received \(file.name) is damaged (\(size) bytes, CRC-32C \(checksum); expected \(file.size), \(file.checksum)); it was removed, send it again")
                }
            }
            let directory = try directory(of: request.shard)
            let shard = try storage { () throws -> Shard in
                try ShardBuilder.adopt(checkpoint: incoming, directory: directory, shardID: request.shard)
                return try Shard(directory: directory, cacheMegabytes: cacheMegabytes)
            }
            try AtomicOutputFile.write(request.moveID + "\n", to: installedMarker(request.shard))
            install(shard, as: request.shard)
            prepared.withLock { $0[request.shard] = nil }
            logger.info("shard copy installed", metadata: [
                "shard.id": "\(request.shard)", "move.id": "\(request.moveID)", "shard.documents": "\(shard.manifest.liveDocuments)",
                "shard.last_change": "\(shard.lastChange)",
            ])
            response.stats = Self.stats(of: shard, id: request.shard)
            return response
        }
    }

    /// Refuses a listing that cannot be a RocksDB checkpoint (it needs `CURRENT` and a
    /// `MANIFEST-…`): nothing is touched for it.
    public static func checkListing(_ request: Sparrow_V1_InstallCheckpointRequest) throws {
        let names = request.files.map(\.name)
        guard names.contains("CURRENT"), names.contains(where: { $0.hasPrefix("MANIFEST-") }) else {
            throw RPCError.invalidArgument(
                "\(request.shard)@\(request.moveID): the file listing (\(names.count) files) is not a complete checkpoint: it needs CURRENT and a MANIFEST-* file")
        }
    }

    /// Names the move whose checkpoint the shard's copy on this node came from.
    private func installedMarker(_ shard: String) throws -> String {
        ((try directory(of: shard)) as NSString).appendingPathComponent("MOVED-IN")
    }

    private func wasInstalled(_ request: Sparrow_V1_InstallCheckpointRequest) -> Bool {
        guard let path = try? installedMarker(request.shard), let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
        return text.trimmingCharacters(in: .whitespacesAndNewlines) == request.moveID
    }

    /// The last change of each checkpoint of `shard` a move has not dropped yet: its target
    /// replays the log from there, so compaction keeps it.
    func checkpointedChanges(of shard: String) -> [UInt64] {
        let parent = (dataDirectory as NSString).appendingPathComponent("checkpoints")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        return names.filter { $0.hasPrefix(shard + "@") && $0.hasSuffix(".json") }.compactMap { name in
            let path = (parent as NSString).appendingPathComponent(name)
            return FileManager.default.contents(atPath: path).flatMap { try? Sparrow_V1_CreateCheckpointResponse(jsonUTF8Data: $0) }?.lastChange
        }
    }

    func readChanges(_ request: Sparrow_V1_ReadChangesRequest) throws -> Sparrow_V1_ReadChangesResponse {
        let shard = try shard(request.shard)
        let limit = request.limit == 0 ? 1000 : Int(min(request.limit, 10_000))
        let tail = shard.tail
        let (changes, last, trimmed) = try storage { try shard.changes(after: request.after, limit: limit) }
        let afterWrite = try storage { try shard.writeID(at: request.after) }
        var response = Sparrow_V1_ReadChangesResponse()
        response.changes = changes.map(Self.wireChange)
        response.lastChange = last
        response.trimmed = trimmed || (afterWrite == nil && request.after <= last)
        response.afterWrite = afterWrite ?? 0
        response.lastWrite = tail.write
        response.buildID = shard.manifest.buildID ?? ""
        return response
    }

    func applyChanges(_ request: Sparrow_V1_ApplyChangesRequest) throws -> Sparrow_V1_ApplyChangesResponse {
        try admit(write: request.epoch)
        let shard = try shard(request.shard)
        try admitDisk(Self.writeBytes(request.changes.map(\.upsert)), what: "\(request.changes.count) replayed changes of \(request.shard)")
        let changes = try Self.changes(request)
        var response = Sparrow_V1_ApplyChangesResponse()
        response.lastChange = try storage { try shard.apply(changes) }
        return response
    }

    /// The changes of an `ApplyChanges` as the storage takes them (each document checked as
    /// `record` checks it).
    public static func changes(_ request: Sparrow_V1_ApplyChangesRequest) throws -> [ShardChange] {
        try request.changes.map { change -> ShardChange in
            switch change.kind {
            case .upsert(let document): return ShardChange(sequence: change.sequence, kind: .upsert(try record(document)), write: change.write)
            case .delete(let id): return ShardChange(sequence: change.sequence, kind: .delete(id), write: change.write)
            case nil: throw RPCError.invalidArgument("change \(change.sequence) is neither an upsert nor a delete")
            }
        }
    }

    func dropShard(_ request: Sparrow_V1_DropShardRequest) throws -> Sparrow_V1_DropShardResponse {
        try admit(write: request.epoch)
        let directory = try directory(of: request.shard)
        try bundleLock.withLock {
            drop(request.shard)
            prepared.withLock { $0[request.shard] = nil }
            for kind in ["checkpoints", "incoming"] {
                let parent = (dataDirectory as NSString).appendingPathComponent(kind)
                for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix(request.shard + "@") {
                    try? FileManager.default.removeItem(atPath: (parent as NSString).appendingPathComponent(name))
                }
            }
            if FileManager.default.fileExists(atPath: directory) { try FileManager.default.removeItem(atPath: directory) }
        }
        logger.info("shard dropped", metadata: ["shard.id": "\(request.shard)"])
        return .init()
    }

    static func wireChange(_ change: ShardChange) -> Sparrow_V1_Change {
        var wire = Sparrow_V1_Change()
        wire.sequence = change.sequence
        wire.write = change.write
        switch change.kind {
        case .upsert(let record):
            var document = Sparrow_V1_Document()
            document.id = record.id
            document.vector = .init(record.vector)
            document.fields = .init(record.fields ?? [:])
            wire.upsert = document
        case .delete(let id): wire.delete = id
        }
        return wire
    }

    static func sizeAndChecksum(_ path: String) throws -> (UInt64, UInt32) {
        guard let file = FileHandle(forReadingAtPath: path) else { throw RPCError(.internal, "\(path): cannot open for reading") }
        defer { try? file.close() }
        var (size, checksum): (UInt64, UInt32) = (0, 0)
        while let chunk = try file.read(upToCount: 4 << 20), !chunk.isEmpty {
            size += UInt64(chunk.count)
            checksum = CRC32C.extend(checksum, chunk)
        }
        return (size, checksum)
    }
}
