import Foundation
import SparrowCore
import SparrowStorage
import SparrowWire

/// Loading a build: upload a bundle's SST in chunks to `DATA/uploads/`, prepare it (check the
/// bytes, ingest it beside the serving content, open it for searches that name its build),
/// activate it (make it the shard's content). A restarted node reopens a prepared build.
extension ShardNode {
    private func uploadPath(shard: String, build: String) throws -> String {
        _ = try directory(of: shard)
        guard Self.isValidShardID(build) else { throw RPCError.invalidArgument("build id '\(build)' is not a safe name") }
        return (uploadsDirectory as NSString).appendingPathComponent("\(shard)@\(build).sst")
    }

    func uploadBundle(_ request: Sparrow_V1_UploadBundleRequest) throws -> Sparrow_V1_UploadBundleResponse {
        try admit(write: request.epoch)
        let path = try uploadPath(shard: request.shard, build: request.buildID)
        return try bundleLock.withLock {
            try FileManager.default.createDirectory(atPath: uploadsDirectory, withIntermediateDirectories: true)
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            if request.offset == 0 {
                // Starts the file over, so that a retried upload does not append to an old one.
                try admitStaging(request.data.count - size, what: "the upload of \(request.shard)@\(request.buildID)")
                guard FileManager.default.createFile(atPath: path, contents: nil) else { throw RPCError(.internal, "\(path): cannot create") }
            } else if request.offset != UInt64(size) {
                // Also what a sender sees after its upload expired: it starts again from offset 0.
                throw RPCError.failedPrecondition("upload of \(request.shard)@\(request.buildID): offset \(request.offset), but \(size) bytes are here")
            } else {
                try admitStaging(request.data.count, what: "the upload of \(request.shard)@\(request.buildID)")
            }
            guard let handle = FileHandle(forWritingAtPath: path) else { throw RPCError(.internal, "\(path): cannot open for writing") }
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: request.data)
            var response = Sparrow_V1_UploadBundleResponse()
            response.received = try handle.offset()
            return response
        }
    }

    func prepareBundle(_ request: Sparrow_V1_PrepareBundleRequest) throws -> Sparrow_V1_PrepareBundleResponse {
        try admit(write: request.epoch)
        let path = try uploadPath(shard: request.shard, build: request.buildID)
        let shardDirectory = try directory(of: request.shard)
        return try bundleLock.withLock {
            guard FileManager.default.fileExists(atPath: path) else {
                throw RPCError.notFound("no upload of \(request.shard)@\(request.buildID) on node \(nodeID)")
            }
            let (size, checksum) = try Self.sizeAndChecksum(path)
            guard size == request.size, checksum == request.checksum else {
                unlink(path)
                throw RPCError.invalidArgument(
                    "upload of \(request.shard)@\(request.buildID) is damaged (\(size) bytes, expected \(request.size); CRC-32C \(checksum), expected \(request.checksum)); send it again")
            }
            let started = ContinuousClock.now
            let shard = try storage { () throws -> Shard in
                try ShardBuilder.prepare(sst: path, directory: shardDirectory)
                return try Shard(directory: shardDirectory, cacheMegabytes: cacheMegabytes, prepared: true)
            }
            unlink(path)
            guard shard.manifest.shardID == request.shard, shard.manifest.buildID == request.buildID else {
                throw RPCError.invalidArgument(
                    "the bundle holds shard \(shard.manifest.shardID) of build \(shard.manifest.buildID ?? "none"), not \(request.shard) of \(request.buildID)")
            }
            prepared.withLock { $0[request.shard] = shard }
            logger.info("build prepared", metadata: [
                "shard.id": "\(request.shard)", "shard.build": "\(request.buildID)", "shard.documents": "\(shard.manifest.liveDocuments)",
                "load.seconds": "\((ContinuousClock.now - started).seconds)",
            ])
            var response = Sparrow_V1_PrepareBundleResponse()
            response.stats = Self.stats(of: shard, id: request.shard)
            return response
        }
    }

    func activateBundle(_ request: Sparrow_V1_ActivateBundleRequest) throws -> Sparrow_V1_ActivateBundleResponse {
        try admit(write: request.epoch)
        return try bundleLock.withLock {
            var response = Sparrow_V1_ActivateBundleResponse()
            if let serving = try? shard(request.shard), serving.manifest.buildID == request.buildID, !request.buildID.isEmpty {
                response.stats = Self.stats(of: serving, id: request.shard)
                return response
            }
            guard let waiting = prepared.withLock({ $0[request.shard] }), waiting.manifest.buildID == request.buildID else {
                throw RPCError.notFound("node \(nodeID) has no prepared build \(request.buildID) of shard '\(request.shard)'")
            }
            try storage { try ShardBuilder.activatePrepared(directory: try directory(of: request.shard)) }
            install(waiting, as: request.shard)
            prepared.withLock { $0[request.shard] = nil }
            logger.info("build activated", metadata: ["shard.id": "\(request.shard)", "shard.build": "\(request.buildID)"])
            response.stats = Self.stats(of: waiting, id: request.shard)
            return response
        }
    }
}
