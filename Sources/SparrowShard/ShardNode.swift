import Foundation
import Logging
import SparrowStorage
import SparrowWire
import Synchronization

/// A shard node: the shards under `dataDirectory/shards/<shard id>/`, each its own RocksDB
/// database, served over the wire by `routes`. Shards can be added or replaced while the
/// node serves (bulk load); the replaced one keeps answering the calls that already hold it.
public final class ShardNode: Sendable {
    public let nodeID: String
    public let dataDirectory: String
    let cacheMegabytes: Int
    let logger: Logger
    private let shards = Mutex<[String: Shard]>([:])
    /// Shards ingested from a build bundle and not yet activated, by shard id.
    let prepared = Mutex<[String: Shard]>([:])
    let uploads = Mutex<[String: Upload]>([:])
    /// Serialises bundle uploads, preparation and activation.
    let bundleLock = NSLock()
    /// The highest cluster-map epoch seen (persisted in DATA/EPOCH).
    let epoch: Mutex<UInt64>
    let staging: StagingLimits

    /// Documents received for a bulk load not yet committed.
    struct Upload {
        var shard: String
        var records: [TokenVectorRecord]
        /// Their approximate size in memory.
        var bytes: Int
        /// When the last chunk came.
        var touched: ContinuousClock.Instant
    }

    /// Opens every shard under `dataDirectory/shards` (creating the directory if needed).
    public init(nodeID: String, dataDirectory: String, cacheMegabytes: Int = 64, staging: StagingLimits = .init(), logger: Logger) throws {
        self.nodeID = nodeID
        self.dataDirectory = dataDirectory
        self.cacheMegabytes = cacheMegabytes
        self.staging = staging
        self.logger = logger
        let root = Self.shardsDirectory(dataDirectory)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        epoch = Mutex(try Self.readEpoch(dataDirectory))
        for name in try FileManager.default.contentsOfDirectory(atPath: root).sorted() where !name.hasPrefix(".") {
            let path = (root as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("CURRENT")) else {
                logger.warning("skipping shard directory without CURRENT", metadata: ["shard.path": "\(path)"])
                continue
            }
            let shard = try Shard(directory: path, cacheMegabytes: cacheMegabytes)
            shards.withLock { $0[name] = shard }
            logger.info("shard opened", metadata: [
                "shard.id": "\(name)", "shard.documents": "\(shard.manifest.liveDocuments)", "shard.postings": "\(shard.manifest.postings)",
                "shard.build": "\(shard.manifest.buildID ?? "-")",
            ])
            if FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("PREPARED")) {
                let waiting = try Shard(directory: path, cacheMegabytes: cacheMegabytes, prepared: true)
                prepared.withLock { $0[name] = waiting }
                logger.info("prepared build opened", metadata: ["shard.id": "\(name)", "shard.build": "\(waiting.manifest.buildID ?? "-")"])
            }
        }
    }

    /// Where a node keeps its shards.
    public static func shardsDirectory(_ dataDirectory: String) -> String {
        (dataDirectory as NSString).appendingPathComponent("shards")
    }

    /// The directory of shard `id` (which must be a safe file name).
    func directory(of id: String) throws -> String {
        guard Self.isValidShardID(id) else {
            throw RPCError.invalidArgument("shard id '\(id)' must be 1–64 characters of letters, digits, '-', '_' or '.' and not start with '.'")
        }
        return (Self.shardsDirectory(dataDirectory) as NSString).appendingPathComponent(id)
    }

    public static func isValidShardID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && !id.hasPrefix(".")
            && id.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
    }

    /// Shard ids this node hosts, sorted.
    public var shardIDs: [String] { shards.withLock { $0.keys.sorted() } }

    /// The open shard `id` (holding `build`, when not empty: the serving content or a
    /// prepared bundle), or a `notFound` error naming what the node has.
    func shard(_ id: String, build: String = "") throws -> Shard {
        let serving = shards.withLock { $0[id] }
        if let serving, build.isEmpty || serving.manifest.buildID == build { return serving }
        let waiting = prepared.withLock { $0[id] }
        if let waiting, !build.isEmpty, waiting.manifest.buildID == build { return waiting }
        if serving == nil && waiting == nil {
            throw RPCError.notFound("node \(nodeID) does not host shard '\(id)' (it hosts: \(shardIDs.joined(separator: ", ")))")
        }
        throw RPCError.notFound(
            "node \(nodeID): shard '\(id)' has build \(serving?.manifest.buildID ?? "none") (prepared: \(waiting?.manifest.buildID ?? "none")), not \(build)")
    }

    /// Serves `shard` as `id` from now on (a bulk load or an activated build).
    func install(_ shard: Shard, as id: String) {
        shards.withLock { $0[id] = shard }
    }

    /// Stops serving shard `id` (calls that hold it finish on it).
    func drop(_ id: String) {
        shards.withLock { $0[id] = nil }
    }

    /// Builds `records` into shard `id` as a new generation and swaps it in.
    func replace(_ id: String, with records: [TokenVectorRecord], quantizationScale: Float?) throws -> Shard {
        let path = try directory(of: id)
        let started = ContinuousClock.now
        try ShardBuilder.build(records: records, directory: path, shardID: id, quantizationScale: quantizationScale)
        let shard = try Shard(directory: path, cacheMegabytes: cacheMegabytes)
        install(shard, as: id)
        prepared.withLock { $0[id] = nil }   // the bulk load superseded it (see ShardDirectory.nextGeneration)
        logger.info("shard loaded", metadata: [
            "shard.id": "\(id)", "shard.documents": "\(records.count)", "load.seconds": "\((ContinuousClock.now - started).seconds)",
        ])
        return shard
    }

    /// Closes every shard (RocksDB flushes and closes once the last call holding one ends).
    public func close() {
        shards.withLock { $0.removeAll() }
        logger.info("shards closed", metadata: ["node.id": "\(nodeID)"])
    }
}
