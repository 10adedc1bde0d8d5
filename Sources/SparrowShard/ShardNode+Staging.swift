import Foundation
import SparrowStorage
import SparrowWire

/// What a node holds for loads that are not finished: bundle uploads on disk (`DATA/uploads/`)
/// and bulk-load documents in memory. Both are bounded in bytes and expire when no chunk came
/// for `ttl`, so a caller that walks away (or means harm) cannot fill the disk or the memory;
/// and no chunk (and no online write or replayed change) is written that would leave the data
/// directory's file system with less than `minFreeBytes` free, so RocksDB never meets a full disk.
public struct StagingLimits: Sendable {
    public var maxBytes: Int
    public var ttl: Duration
    public var minFreeBytes: Int

    public init(maxBytes: Int = 64 << 30, ttl: Duration = .seconds(3600), minFreeBytes: Int = 1 << 30) {
        self.maxBytes = maxBytes
        self.ttl = ttl
        self.minFreeBytes = minFreeBytes
    }
}

extension ShardNode {
    var uploadsDirectory: String { (dataDirectory as NSString).appendingPathComponent("uploads") }

    /// Bytes of staged bundle files, by path.
    private func stagedFiles() -> [String: (bytes: Int, modified: Date)] {
        var files: [String: (Int, Date)] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: uploadsDirectory)) ?? [] {
            let path = (uploadsDirectory as NSString).appendingPathComponent(name)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { continue }
            files[path] = ((attributes[.size] as? Int) ?? 0, (attributes[.modificationDate] as? Date) ?? .distantPast)
        }
        return files
    }

    /// Bytes staged now: upload files plus bulk loads in memory.
    public var stagedBytes: Int {
        stagedFiles().values.reduce(0) { $0 + $1.bytes } + uploads.withLock { $0.values.reduce(0) { $0 + $1.bytes } }
    }

    /// Refuses `adding` more staged bytes past the limit, or past the free-space floor.
    func admitStaging(_ adding: Int, what: String) throws {
        let staged = stagedBytes
        guard staged + adding <= staging.maxBytes else {
            throw RPCError(.resourceExhausted,
                "node \(nodeID): \(what) would stage \(staged + adding) bytes, over its limit of \(staging.maxBytes) (--max-staged-mb); unfinished loads expire after \(Int(staging.ttl.seconds)) s")
        }
        try admitDisk(adding, what: what)
    }

    /// Refuses writing `adding` bytes that would leave less than `minFreeBytes` on the data directory's file system.
    func admitDisk(_ adding: Int, what: String) throws {
        var info = statvfs()
        guard statvfs(dataDirectory, &info) == 0 else { return }
        let free = Int(info.f_bavail) * Int(info.f_frsize)
        guard free - adding >= staging.minFreeBytes else {
            throw RPCError(.resourceExhausted,
                "node \(nodeID): \(what) needs \(adding) bytes, but \(dataDirectory) has \(free) free and keeps at least \(staging.minFreeBytes)")
        }
    }

    /// Removes staged uploads and bulk loads that received nothing for `ttl`; returns how many.
    @discardableResult
    public func expireStaging(now: Date = Date()) -> Int {
        let cutoff = now.addingTimeInterval(-staging.ttl.seconds)
        var expired = 0
        bundleLock.withLock {
            for (path, file) in stagedFiles() where file.modified < cutoff {
                unlink(path)
                expired += 1
                logger.info("staged upload expired", metadata: ["upload.path": "\(path)", "upload.bytes": "\(file.bytes)"])
            }
        }
        let instant = ContinuousClock.now - staging.ttl
        uploads.withLock { uploads in
            for (key, upload) in uploads where upload.touched < instant {
                uploads[key] = nil
                expired += 1
                logger.info("bulk load expired", metadata: ["upload.key": "\(key)", "upload.bytes": "\(upload.bytes)"])
            }
        }
        return expired
    }
}
