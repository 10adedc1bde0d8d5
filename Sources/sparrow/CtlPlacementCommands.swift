import ArgumentParser
import Foundation
import SparrowBuilder
import SparrowClient
import SparrowWire
import SwiftProtobuf

/// The coordinator address, and the throttle of shard copies, of the placement commands.
struct CoordinatorOptions: ParsableArguments {
    @Option(help: "Coordinator protobuf/TCP address, host:port.")
    var coordinator: String

    @OptionGroup var access: ClientSecurityOptions

    /// A client of the coordinator.
    func client() throws -> ClusterClient { try access.coordinator(coordinator) }

    /// Sends one map change and prints its plan and the epoch it ended at. Moves can take long:
    /// the call waits up to a day (the coordinator carries on if this tool goes away).
    func change(_ method: String, _ request: some Message, dryRun: Bool = false) async throws {
        let client = try client()
        defer { Task { await client.close() } }
        let started = ContinuousClock.now
        let watcher = dryRun ? nil : Task { await Self.showCopies(client) }
        defer { watcher?.cancel() }
        let response = try await client.changeMap(method, request)
        for move in response.plan {
            print("\(dryRun ? "would move" : "moved") \(move.shard): \(move.from.isEmpty ? "(new replica)" : move.from) → \(move.to.isEmpty ? "(removed)" : move.to)"
                  + String(format: " (%.1f MB)", Double(move.bytes) / 1e6))
        }
        if response.plan.isEmpty && [CoordinatorMethod.rebalance, CoordinatorMethod.drainNode, CoordinatorMethod.setReplicas].contains(method) {
            print("nothing to move")
        }
        print(String(format: "%@epoch %llu (%.1f s)", dryRun ? "dry run, nothing changed: " : "done: ", response.epoch, (ContinuousClock.now - started).seconds))
    }
}

extension CoordinatorOptions {
    /// Prints the progress of the copies the coordinator is making (bytes, MB/s, ETA), asking
    /// it once a second, until cancelled; a copy seen to end gets its line with the total time
    /// (the change's own summary follows the last one).
    static func showCopies(_ client: ClusterClient) async {
        var reporters: [String: (reporter: ProgressReporter, total: UInt64)] = [:]
        var wait = Duration.milliseconds(300)
        while !Task.isCancelled {
            try? await Task.sleep(for: wait)
            wait = .seconds(1)
            guard let cluster = try? await client.cluster(timeout: .seconds(5)), !Task.isCancelled else { continue }
            let copying = cluster.moves.filter { $0.totalBytes > 0 }
            for move in copying {
                let reporter = reporters[move.id]?.reporter ?? ProgressReporter(
                    label: "move \(move.shard) \(move.from.isEmpty ? "(new replica)" : move.from) → \(move.to), copy", total: Int(move.totalBytes),
                    unit: .bytes, initial: Int(move.copiedBytes))
                reporters[move.id] = (reporter, move.totalBytes)
                reporter.update(Int(move.copiedBytes))
            }
            for (id, entry) in reporters where !copying.contains(where: { $0.id == id }) {
                entry.reporter.update(Int(entry.total), final: true)
                reporters[id] = nil
            }
        }
    }
}

struct ThrottleOptions: ParsableArguments {
    @Option(help: "Copy throttle, bytes per second (0: unlimited).")
    var bytesPerSecond: UInt64 = 0
}

struct CtlAddNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-node", abstract: "Add a running shard node to the map (it takes shards on the next rebalance).")

    @Argument(help: "The node's protobuf/TCP address, host:port, as the coordinator reaches it.")
    var address: String

    @Option(help: "Node id (default: the id the node reports, its --node-id).")
    var id: String?

    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        try await reportingErrorsAsync {
            var request = Sparrow_V1_AddNodeRequest()
            request.address = address
            request.node = id ?? ""
            try await options.change(CoordinatorMethod.addNode, request)
        }
    }
}

struct CtlDrainNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain-node", abstract: "Mark a node draining and move every replica it holds to other nodes, one at a time.")

    @Argument(help: "Node id.")
    var node: String

    @Flag(help: "Print the plan only.")
    var dryRun = false

    @OptionGroup var throttle: ThrottleOptions
    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        try await reportingErrorsAsync {
            var request = Sparrow_V1_DrainNodeRequest()
            request.node = node
            request.dryRun = dryRun
            request.bytesPerSecond = throttle.bytesPerSecond
            try await options.change(CoordinatorMethod.drainNode, request, dryRun: dryRun)
        }
    }
}

struct CtlRemoveNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-node", abstract: "Take a node that holds no shards out of the map (drain it first).")

    @Argument(help: "Node id.")
    var node: String

    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        try await reportingErrorsAsync {
            var request = Sparrow_V1_RemoveNodeRequest()
            request.node = node
            try await options.change(CoordinatorMethod.removeNode, request)
        }
    }
}

struct CtlMoveShardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "move-shard",
        abstract: "Move a shard's replica to another node without downtime.",
        discussion: """
        The source writes a RocksDB checkpoint; its files are streamed to the target (throttled with \
        --bytes-per-second) and installed; the target replays the writes made meanwhile; then, with the \
        shard's writes held for a moment, the last ones are replayed and the map switches to the target \
        (epoch + 1); the source copy is dropped once searches sent before the switch are over. Each phase \
        is recorded in the map: if anything is interrupted, run the same command again to resume, or \
        --abort to roll back a move that has not switched yet.
        """
    )

    @Argument(help: "Shard id.")
    var shard: String

    @Option(help: "Node the replica leaves (default: add a replica, copied from one that is up).")
    var from: String?

    @Option(help: "Node the replica goes to.")
    var to: String?

    @Option(help: "Stop after this phase: copy, catch-up or switch (run again to go on).")
    var until: String?

    @Flag(help: "Roll back the shard's move in progress (before its switch).")
    var abort = false

    @OptionGroup var throttle: ThrottleOptions
    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard abort || to != nil else { throw ValidationError("move-shard needs --to (or --abort)") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            var request = Sparrow_V1_MoveShardRequest()
            request.shard = shard
            request.from = from ?? ""
            request.to = to ?? ""
            request.until = until ?? ""
            request.abort = abort
            request.bytesPerSecond = throttle.bytesPerSecond
            try await options.change(CoordinatorMethod.moveShard, request)
        }
    }
}

struct CtlSetReplicasCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-replicas", abstract: "Give a shard N replicas: copies added on the lightest nodes, or removed from the heaviest.")

    @Argument(help: "Shard id.")
    var shard: String

    @Argument(help: "Number of replicas.")
    var replicas: UInt32

    @Flag(help: "Print the plan only.")
    var dryRun = false

    @OptionGroup var throttle: ThrottleOptions
    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        try await reportingErrorsAsync {
            var request = Sparrow_V1_SetReplicasRequest()
            request.shard = shard
            request.replicas = replicas
            request.dryRun = dryRun
            request.bytesPerSecond = throttle.bytesPerSecond
            try await options.change(CoordinatorMethod.setReplicas, request, dryRun: dryRun)
        }
    }
}

struct CtlRebalanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebalance",
        abstract: "Even out shard bytes across the nodes in service: plan the moves, print them, carry them out one at a time.")

    @Flag(help: "Print the plan only.")
    var dryRun = false

    @OptionGroup var throttle: ThrottleOptions
    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        try await reportingErrorsAsync {
            var request = Sparrow_V1_RebalanceRequest()
            request.dryRun = dryRun
            request.bytesPerSecond = throttle.bytesPerSecond
            try await options.change(CoordinatorMethod.rebalance, request, dryRun: dryRun)
        }
    }
}
