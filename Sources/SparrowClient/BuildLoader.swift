import Foundation
import SparrowBuilder
import SparrowCoordinator
import SparrowCore
import SparrowWire

/// Loads a finished build into a running cluster, all or nothing (`sparrow ctl load`): checks
/// that the build fits the cluster (its shards, its tokenizer and IDF against the coordinator's
/// query encoder), ships each shard's bundle to every replica that lacks it (in chunks, through
/// the coordinator, checked by CRC-32C), has each node prepare it beside what it serves, and then
/// asks the coordinator to switch searches to it. Until that switch the old build serves; a
/// refused or interrupted load changes nothing searches see, and running it again resumes
/// (replicas that hold the build already are skipped).
public struct BuildLoader: Sendable {
    /// What the load is doing, for a caller that shows progress.
    public enum Event: Sendable {
        /// `sent` of `total` bytes of `shard`'s bundle are on `node`.
        case uploading(shard: String, node: String, sent: Int, total: Int?)
        /// The node lost an upload in progress (it expired there); it starts again from byte 0.
        case restarted(shard: String, node: String, reason: String)
        /// The node prepared the bundle: `documents` in `bytes`, uploaded and prepared in `took`.
        case prepared(shard: String, node: String, address: String, documents: UInt64, bytes: UInt64, took: Duration)
    }

    /// What a finished load did.
    public struct Outcome: Sendable {
        public var buildID: String
        public var documents: Int
        public var shards: Int
        /// The epoch the cluster serves the build at.
        public var epoch: UInt64
        /// Replicas that serve the build from their prepared copy, with why they could not activate it.
        public var notActivated: [(shard: String, node: String, reason: String)]
        public var took: Duration
    }

    /// Why a load was refused before anything changed.
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    public let build: String
    public var chunkBytes: Int

    /// A loader of the build in directory `build` (`sparrow build --out`), uploading `chunkBytes` at a time.
    public init(build: String, chunkBytes: Int = 4 << 20) {
        self.build = build
        self.chunkBytes = max(1, chunkBytes)
    }

    public func load(through client: ClusterClient, events: @Sendable (Event) -> Void = { _ in }) async throws -> Outcome {
        let manifest = try BuildManifest.load(buildDirectory: build)
        let cluster = try await client.cluster()
        let encoder = manifest.encoder.map { encoder in
            var info = Sparrow_V1_QueryEncoderInfo()
            info.weighting = encoder.weighting
            info.tokenizer = encoder.tokenizer
            info.idf = encoder.idf
            return info
        }
        if let reason = Coordinator.incompatibility(build: encoder, coordinator: cluster.hasEncoder ? cluster.encoder : nil) {
            throw Refusal(description: "refused: \(reason)")
        }
        let clusterShards = Set(cluster.shards.map(\.shard))
        guard Set(manifest.shards.map(\.id)) == clusterShards else {
            throw Refusal(description:
                "refused: the build has shards [\(manifest.shards.map(\.id).joined(separator: ", "))], the cluster [\(clusterShards.sorted().joined(separator: ", "))]")
        }
        let started = ContinuousClock.now
        let held = try await client.replicaStats()
        for shard in manifest.shards {
            let file = (build as NSString).appendingPathComponent(shard.file)
            for replica in cluster.shards.first(where: { $0.shard == shard.id })!.replicas {
                let stats = held.replicas.first { $0.shard == shard.id && $0.node == replica.node }?.stats
                if let stats, stats.buildID == manifest.buildID || stats.preparedBuildID == manifest.buildID { continue }
                try await ship(file, shard: shard.id, build: manifest.buildID, to: replica, through: client, events: events)
            }
        }
        var request = Sparrow_V1_ActivateBuildRequest()
        request.buildID = manifest.buildID
        request.shards = manifest.shards.map(\.id)
        if let encoder { request.encoder = encoder }
        let response = try await client.activateBuild(request)
        return Outcome(
            buildID: manifest.buildID, documents: manifest.documents, shards: manifest.shards.count, epoch: response.epoch,
            notActivated: response.notActivated.map { ($0.shard, $0.node, $0.reason) }, took: ContinuousClock.now - started)
    }

    /// Uploads one bundle to one replica and has the node prepare it, through the coordinator
    /// (which alone may call a node's bundle methods). An upload that expired on the node
    /// meanwhile (it answers that its bytes are not there) starts again from the beginning, at
    /// most three times.
    func ship(
        _ file: String, shard: String, build: String, to replica: Sparrow_V1_Replica, through client: ClusterClient, events: @Sendable (Event) -> Void
    ) async throws {
        guard let handle = FileHandle(forReadingAtPath: file) else { throw Refusal(description: "\(file): cannot read the bundle") }
        defer { try? handle.close() }
        let started = ContinuousClock.now
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil
        var step = Sparrow_V1_StageBundleRequest()
        step.node = replica.node
        var upload = Sparrow_V1_UploadBundleRequest()
        upload.shard = shard
        upload.buildID = build
        var checksum: UInt32 = 0
        var restarts = 0
        while let chunk = try handle.read(upToCount: chunkBytes), !chunk.isEmpty {
            upload.data = chunk
            step.upload = upload
            do {
                let answer = try await client.stageBundle(step, timeout: .seconds(60))
                checksum = CRC32C.extend(checksum, chunk)
                upload.offset = answer.upload.received
                events(.uploading(shard: shard, node: replica.node, sent: Int(upload.offset), total: size))
            } catch let error as RPCError where error.code == .failedPrecondition && upload.offset > 0 && restarts < 3 {
                restarts += 1
                events(.restarted(shard: shard, node: replica.node, reason: error.message))
                try handle.seek(toOffset: 0)
                (upload.offset, checksum) = (0, 0)
            }
        }
        var prepare = Sparrow_V1_PrepareBundleRequest()
        prepare.shard = shard
        prepare.buildID = build
        prepare.size = upload.offset
        prepare.checksum = checksum
        step.prepare = prepare
        let prepared = try await client.stageBundle(step, timeout: .seconds(600)).prepare
        events(.prepared(
            shard: shard, node: replica.node, address: replica.address, documents: prepared.stats.documents, bytes: upload.offset,
            took: ContinuousClock.now - started))
    }
}
