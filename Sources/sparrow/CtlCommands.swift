import ArgumentParser
import Logging
import Foundation
import SparrowBuilder
import SparrowCoordinator
import SparrowCore
import SparrowWire

struct CtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Operate a running cluster through its coordinator.",
        subcommands: [
            CtlLoadCommand.self, CtlStatusCommand.self, CtlAddNodeCommand.self, CtlDrainNodeCommand.self, CtlRemoveNodeCommand.self,
            CtlMoveShardCommand.self, CtlSetReplicasCommand.self, CtlRebalanceCommand.self, CtlMigrateMapCommand.self,
        ]
    )
}

struct CtlLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load a finished build into the cluster, all or nothing.",
        discussion: """
        Ships each shard's bundle to every node serving that shard (in chunks, checked by CRC-32C), where it \
        is ingested beside the content being served; then the coordinator checks that every replica has it \
        and that the build's tokenizer and IDF match its query encoder, and only then switches searches to the \
        new build (epoch + 1, saved in its cluster file). Until that moment the old build keeps serving; a \
        refused or interrupted load changes nothing that queries see. Replicas that already hold the build \
        are skipped, so running the command again resumes an interrupted load, or restores a replica that \
        lost its data.
        """
    )

    @Argument(help: "The build directory (`sparrow build --out`).")
    var build: String

    @OptionGroup var target: CoordinatorOptions

    @Option(help: "Upload chunk size, MiB (below the nodes' frame limit).")
    var chunkMb: Int = 4

    func run() async throws {
        try await reportingErrorsAsync {
            let manifest = try BuildManifest.load(buildDirectory: build)
            let client = try target.client()
            defer { Task { await client.close() } }
            let cluster = try await client.call(CoordinatorMethod.cluster, Sparrow_V1_ClusterRequest(), timeout: .seconds(10), as: Sparrow_V1_ClusterResponse.self)
            let encoder = manifest.encoder.map { encoder in
                var info = Sparrow_V1_QueryEncoderInfo()
                info.weighting = encoder.weighting
                info.tokenizer = encoder.tokenizer
                info.idf = encoder.idf
                return info
            }
            if let reason = Coordinator.incompatibility(build: encoder, coordinator: cluster.hasEncoder ? cluster.encoder : nil) {
                throw ValidationError("refused: \(reason)")
            }
            let clusterShards = Set(cluster.shards.map(\.shard))
            guard Set(manifest.shards.map(\.id)) == clusterShards else {
                throw ValidationError(
                    "refused: the build has shards [\(manifest.shards.map(\.id).joined(separator: ", "))], the cluster [\(clusterShards.sorted().joined(separator: ", "))]")
            }
            let started = ContinuousClock.now
            let held = try await client.call(CoordinatorMethod.replicaStats, Sparrow_V1_ReplicaStatsRequest(), timeout: .seconds(30), as: Sparrow_V1_ReplicaStatsResponse.self)
            for shard in manifest.shards {
                let file = (build as NSString).appendingPathComponent(shard.file)
                for replica in cluster.shards.first(where: { $0.shard == shard.id })!.replicas {
                    let stats = held.replicas.first { $0.shard == shard.id && $0.node == replica.node }?.stats
                    if let stats, stats.buildID == manifest.buildID || stats.preparedBuildID == manifest.buildID { continue }
                    try await ship(file, shard: shard.id, build: manifest.buildID, to: replica, through: client)
                }
            }
            var request = Sparrow_V1_ActivateBuildRequest()
            request.buildID = manifest.buildID
            request.shards = manifest.shards.map(\.id)
            if let encoder { request.encoder = encoder }
            let response = try await client.call(CoordinatorMethod.activateBuild, request, timeout: .seconds(120), as: Sparrow_V1_ActivateBuildResponse.self)
            for failure in response.notActivated {
                FileHandle.standardError.write(Data("warning: \(failure.shard)@\(failure.node) serves the build from its prepared copy: \(failure.reason)\n".utf8))
            }
            print(String(format: "build %@ serves: %d documents in %d shard(s), epoch %llu (%.1f s)", manifest.buildID, manifest.documents,
                         manifest.shards.count, response.epoch, (ContinuousClock.now - started).seconds))
        }
    }

    /// Uploads one bundle to one replica and has the node prepare it, through the coordinator
    /// (which alone may call a node's bundle methods). An upload that expired on the node
    /// meanwhile (it answers that its bytes are not there) starts again from the beginning.
    func ship(_ file: String, shard: String, build: String, to replica: Sparrow_V1_Replica, through client: RPCClient) async throws {
        guard let handle = FileHandle(forReadingAtPath: file) else { throw ValidationError("\(file): cannot read the bundle") }
        defer { try? handle.close() }
        let started = ContinuousClock.now
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil
        let progress = ProgressReporter(label: "load: \(shard) → \(replica.node)", total: size, unit: .bytes)
        var step = Sparrow_V1_StageBundleRequest()
        step.node = replica.node
        var upload = Sparrow_V1_UploadBundleRequest()
        upload.shard = shard
        upload.buildID = build
        var checksum: UInt32 = 0
        var restarts = 0
        while let chunk = try handle.read(upToCount: max(1, chunkMb) << 20), !chunk.isEmpty {
            upload.data = chunk
            step.upload = upload
            do {
                let answer = try await client.call(CoordinatorMethod.stageBundle, step, timeout: .seconds(60), as: Sparrow_V1_StageBundleResponse.self)
                checksum = CRC32C.extend(checksum, chunk)
                upload.offset = answer.upload.received
                progress.update(Int(upload.offset))
            } catch let error as RPCError where error.code == .failedPrecondition && upload.offset > 0 && restarts < 3 {
                restarts += 1
                FileHandle.standardError.write(Data("load: \(shard) → \(replica.node): the node no longer has the upload (\(error.message)); starting it again\n".utf8))
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
        let prepared = try await client.call(CoordinatorMethod.stageBundle, step, timeout: .seconds(600), as: Sparrow_V1_StageBundleResponse.self).prepare
        FileHandle.standardError.write(Data(String(
            format: "load: %@ → %@ (%@): %llu documents, %.1f MB in %.1f s\n", shard, replica.node, replica.address, prepared.stats.documents,
            Double(upload.offset) / 1e6, (ContinuousClock.now - started).seconds).utf8))
    }
}

struct CtlStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The cluster map (epoch, build, shards and their replicas) with each replica's documents and bytes."
    )

    @Option(help: "Coordinator protobuf/TCP address, host:port: the map as it serves it. With --etcd alone, only the control plane is shown.")
    var coordinator: String?

    @OptionGroup var access: ClientSecurityOptions

    @OptionGroup var etcd: EtcdOptions

    func validate() throws {
        guard coordinator != nil || etcd.etcd != nil else { throw ValidationError("give --coordinator, or --etcd and --cluster-name") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            if let store = try etcd.store(logger: Logger(label: "sparrow.ctl")) {
                let status = try await store.status()
                await store.client.shutdown()
                Self.report(status)
            }
            guard let coordinator else { return }
            let client = try access.coordinator(coordinator)
            defer { Task { await client.close() } }
            let cluster = try await client.call(CoordinatorMethod.cluster, Sparrow_V1_ClusterRequest(), timeout: .seconds(10), as: Sparrow_V1_ClusterResponse.self)
            print("epoch \(cluster.epoch), build \(cluster.buildID.isEmpty ? "(none)" : cluster.buildID)"
                  + (cluster.owner.isEmpty ? "" : "; this coordinator follows \(cluster.owner), which owns the map"))
            for node in cluster.nodes {
                print("node \(node.node) \(node.address): \(node.state)" + (node.reason.isEmpty ? "" : " (\(node.reason))"))
            }
            let held = try await client.call(CoordinatorMethod.replicaStats, Sparrow_V1_ReplicaStatsRequest(), timeout: .seconds(30), as: Sparrow_V1_ReplicaStatsResponse.self)
            print("shard".padding(toLength: 12, withPad: " ", startingAt: 0) + "node".padding(toLength: 12, withPad: " ", startingAt: 0)
                  + "address".padding(toLength: 24, withPad: " ", startingAt: 0) + "documents  bytes on disk  build")
            for shard in cluster.shards {
                for replica in shard.replicas {
                    var line = shard.shard.padding(toLength: 12, withPad: " ", startingAt: 0) + replica.node.padding(toLength: 12, withPad: " ", startingAt: 0)
                        + replica.address.padding(toLength: 24, withPad: " ", startingAt: 0)
                    if let entry = held.replicas.first(where: { $0.shard == shard.shard && $0.node == replica.node }), entry.error.isEmpty, entry.hasStats {
                        let stats = entry.stats
                        line += String(format: "%9llu  %13llu  %@", stats.documents, stats.bytesOnDisk, stats.buildID.isEmpty ? "-" : stats.buildID)
                        if !stats.preparedBuildID.isEmpty { line += " (prepared: \(stats.preparedBuildID))" }
                    } else {
                        line += "unreachable"
                    }
                    if replica.stale { line += "  STALE: missed writes, serves nothing until caught up" }
                    print(line)
                }
            }
            for move in cluster.moves {
                print("move \(move.id): \(move.shard) \(move.from.isEmpty ? "(new replica)" : move.from) → \(move.to), phase \(move.phase)"
                      + (move.totalBytes > 0 ? String(format: ", copied %.1f of %.1f MB", Double(move.copiedBytes) / 1e6, Double(move.totalBytes) / 1e6) : ""))
            }
            for orphan in cluster.orphans {
                print("orphan copy: \(orphan.shard) on \(orphan.node), outside the map for \(orphan.seenSeconds) s; the owner drops it in \(orphan.dropInSeconds) s")
            }
        }
    }

    static func report(_ status: ControlPlaneStatus) {
        for member in status.members {
            Swift.print("etcd \(member.endpoint): " + (member.error.map { "DOWN (\($0))" }
                ?? "up, version \(member.version ?? "?")\(member.isLeader ? ", leader" : ""), raft term \(member.raftTerm ?? 0)"))
        }
        let healthy = status.members.count { $0.error == nil }
        Swift.print("etcd: \(healthy) of \(status.members.count) endpoints answer" + (healthy * 2 > status.members.count ? "" : " (fewer than half: etcd may have lost its quorum)"))
        Swift.print("map: " + (status.mapEpoch.map { "epoch \($0), etcd revision \(status.mapRevision ?? 0)" } ?? "none in etcd"))
        if status.coordinators.isEmpty { Swift.print("coordinators: none registered, so none owns the map") }
        for (index, coordinator) in status.coordinators.enumerated() {
            Swift.print("coordinator \(coordinator.record.name) \(coordinator.record.rpc): \(index == 0 ? "OWNER" : "follower"), lease "
                        + (coordinator.leaseSecondsLeft.map { "\($0) s left" } ?? "expired") + " (\(coordinator.key))")
        }
    }
}

struct CtlMigrateMapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-map",
        abstract: "Move a file-based cluster onto etcd: write its cluster file as the cluster's map in etcd.",
        discussion: """
        Stop the coordinator that owns the file first (its changes would not reach etcd), then start the \
        coordinators with --etcd and --cluster-name. Refused when etcd holds a map for the cluster already. \
        The map keeps its epoch; the first owner raises it.
        """
    )

    @Option(help: "The cluster file (YAML) to move.")
    var cluster: String

    @OptionGroup var etcd: EtcdOptions

    func validate() throws {
        guard etcd.etcd != nil else { throw ValidationError("migrate-map needs --etcd and --cluster-name") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            let map = try ClusterMap.load(path: cluster)
            guard let store = try etcd.store(logger: Logger(label: "sparrow.ctl")) else { return }
            defer { Task { await store.client.shutdown() } }
            guard try await store.create(map) else {
                let held = try await store.load()
                throw ValidationError("etcd holds a map for cluster '\(store.keys.cluster)' already (epoch \(held?.map.epoch ?? 0), at \(store.keys.map)); nothing was changed")
            }
            print("migrated \(cluster) (epoch \(map.epoch), \(map.nodes.count) nodes, \(map.shards.count) shards) to \(store.keys.map) on \(store.client.endpoints.joined(separator: ","))")
        }
    }
}
