import ArgumentParser
import Logging
import Foundation
import SparrowBuilder
import SparrowClient
import SparrowCoordinator
import SparrowCore
import SparrowWire
import Synchronization

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
            let client = try target.client()
            defer { Task { await client.close() } }
            let reporters = Mutex<[String: ProgressReporter]>([:])
            let outcome: BuildLoader.Outcome
            do {
                outcome = try await BuildLoader(build: build, chunkBytes: chunkMb << 20).load(through: client) { event in
                    switch event {
                    case .uploading(let shard, let node, let sent, let total):
                        reporters.withLock { reporters in
                            let label = "load: \(shard) → \(node)"
                            let reporter = reporters[label] ?? ProgressReporter(label: label, total: total, unit: .bytes)
                            reporters[label] = reporter
                            reporter.update(sent)
                        }
                    case .restarted(let shard, let node, let reason):
                        FileHandle.standardError.write(Data("load: \(shard) → \(node): the node no longer has the upload (\(reason)); starting it again\n".utf8))
                    case .prepared(let shard, let node, let address, let documents, let bytes, let took):
                        FileHandle.standardError.write(Data(String(
                            format: "load: %@ → %@ (%@): %llu documents, %.1f MB in %.1f s\n", shard, node, address, documents, Double(bytes) / 1e6, took.seconds).utf8))
                    }
                }
            } catch let refusal as BuildLoader.Refusal {
                throw ValidationError(refusal.description)
            }
            for failure in outcome.notActivated {
                FileHandle.standardError.write(Data("warning: \(failure.shard)@\(failure.node) serves the build from its prepared copy: \(failure.reason)\n".utf8))
            }
            print(String(format: "build %@ serves: %d documents in %d shard(s), epoch %llu (%.1f s)", outcome.buildID, outcome.documents,
                         outcome.shards, outcome.epoch, outcome.took.seconds))
        }
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
            let cluster = try await client.cluster()
            print("epoch \(cluster.epoch), build \(cluster.buildID.isEmpty ? "(none)" : cluster.buildID)"
                  + (cluster.owner.isEmpty ? "" : "; this coordinator follows \(cluster.owner), which owns the map"))
            for node in cluster.nodes {
                print("node \(node.node) \(node.address): \(node.state)" + (node.reason.isEmpty ? "" : " (\(node.reason))"))
            }
            let held = try await client.replicaStats()
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
