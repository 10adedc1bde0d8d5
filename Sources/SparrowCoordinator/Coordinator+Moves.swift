import Foundation
import Logging
import SparrowWire

/// Moving a copy of a shard to another node, in phases recorded in the map (so a move
/// survives the coordinator, and `move-shard` run again resumes it):
/// 1. `copy`: the source writes a RocksDB checkpoint; its files are streamed to the target
///    (throttled; resumed from what the target holds) and installed there. The checkpoint
///    stays until the move ends, so that the source's compactions keep the log after it.
/// 2. `catch-up`: the target replays the source's change log from the checkpoint on, while
///    writes continue to the source; then, with the shard's writes held at the gate, the last
///    changes are replayed and the map switches to the target (epoch + 1): `switched`.
/// 3. After searches begun on the old map have ended, the source copy is dropped and the move
///    leaves the map.
/// Until the switch only the source serves (the target's copy is not in the map), so a move
/// can be aborted then; after it only the target does.
extension Coordinator {
    func moveShard(_ request: Sparrow_V1_MoveShardRequest) async throws -> Sparrow_V1_MapChangeResponse {
        try await operation {
            if request.abort {
                try await self.abortMove(shard: request.shard)
            } else {
                guard !request.to.isEmpty || self.cluster.move(of: request.shard) != nil else {
                    throw RPCError.invalidArgument("move-shard needs --to")
                }
                guard ["", "copy", "catch-up", "switch"].contains(request.until) else {
                    throw RPCError.invalidArgument("--until takes copy, catch-up or switch, not '\(request.until)'")
                }
                try await self.runMove(
                    shard: request.shard, from: request.from.isEmpty ? nil : request.from, to: request.to,
                    rate: request.bytesPerSecond, until: request.until)
            }
            return self.mapChangeResponse([])
        }
    }

    /// Runs `body` as the one map-changing operation at a time, in a task of its own: an
    /// operator's tool that goes away does not stop a move halfway.
    func operation<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try requireOwner("map changes")
        let id = UUID()
        let task = Task {
            defer { _ = self.running.withLock { $0.removeValue(forKey: id) } }
            return try await self.operations.run {
                try self.requireOwner("map changes")
                return try await body()
            }
        }
        running.withLock { $0[id] = { task.cancel() } }
        return try await task.value
    }

    /// Cancels every operation running or waiting: this coordinator no longer owns the map
    /// (the next owner resumes the moves from the phase recorded in the map).
    func stopOperations() {
        let cancels = running.withLock { $0.values }
        for cancel in cancels { cancel() }
        if !cancels.isEmpty { logger.warning("operations stopped: this coordinator no longer owns the map", metadata: ["operations": "\(cancels.count)"]) }
    }

    /// Resumes, one after another, the moves the map records as in progress (a new owner's
    /// first act: the last owner stopped them in the phase the map names).
    func resumeMoves() {
        for move in cluster.moves ?? [] {
            Task {
                let fields: Logger.Metadata = ["shard.id": "\(move.shard)", "move.id": "\(move.id)", "move.phase": "\(move.phase.rawValue)"]
                logger.notice("move: resuming from its recorded phase", metadata: fields)
                do {
                    try await operation { try await self.runMove(shard: move.shard, from: move.from, to: move.to, rate: 0) }
                } catch {
                    logger.error("move: cannot resume; run move-shard again, or abort it", metadata: fields.merging(["error": "\(error)"]) { $1 })
                }
            }
        }
    }

    func mapChangeResponse(_ plan: [PlannedMove]) -> Sparrow_V1_MapChangeResponse {
        var response = Sparrow_V1_MapChangeResponse()
        response.epoch = cluster.epoch
        response.plan = plan.map { move in
            var wire = Sparrow_V1_Move()
            wire.shard = move.shard
            wire.from = move.from ?? ""
            wire.to = move.to ?? ""
            wire.bytes = move.bytes
            return wire
        }
        return response
    }

    /// Starts (or resumes) moving `shard`'s replica on `from` (nil: adding a replica) to `to`.
    func runMove(shard: String, from: String?, to: String, rate: UInt64, until: String = "") async throws {
        var move = try await beginMove(shard: shard, from: from, to: to)
        let fields: Logger.Metadata = ["shard.id": "\(shard)", "move.id": "\(move.id)", "move.to": "\(move.to)", "move.source": "\(move.source)"]
        if move.phase == .copy {
            logger.info("move: copying", metadata: fields)
            try await copy(move, rate: rate)
            move = try await setPhase(of: move, to: .catchUp)
            if until == "copy" { return }
        }
        if move.phase == .catchUp {
            logger.info("move: catching up", metadata: fields)
            try await catchUp(move)
            if until == "catch-up" { return }
            let switched = try await gate(shard).run { () async throws -> ClusterMap.Move in
                try await self.catchUp(move)
                return try await self.switchReplicas(move)
            }
            move = switched
            logger.info("move: switched", metadata: fields.merging(["cluster.epoch": "\(cluster.epoch)"]) { $1 })
            if until == "switch" { return }
        }
        try await finishMove(move)
        logger.info("move: done", metadata: fields)
    }

    /// The move of `shard` recorded in the map (which must match), or a new one, recorded.
    private func beginMove(shard: String, from: String?, to: String) async throws -> ClusterMap.Move {
        let cluster = self.cluster
        guard let entry = cluster.shard(shard) else { throw RPCError.notFound("no shard '\(shard)' in the cluster map") }
        if let existing = cluster.move(of: shard) {
            guard to.isEmpty || (existing.to == to && (from == nil || existing.from == from)) else {
                throw RPCError.failedPrecondition(
                    "\(shard) has a move in progress (\(existing.from ?? "new replica") → \(existing.to), phase \(existing.phase.rawValue)): resume it with the same --from/--to, or abort it")
            }
            return existing
        }
        guard let target = cluster.nodes.first(where: { $0.id == to }) else { throw RPCError.notFound("no node '\(to)' in the cluster map") }
        guard !target.isDraining else { throw RPCError.failedPrecondition("node \(to) is draining: it takes no shards") }
        if let reason = downReason(to) { throw RPCError.failedPrecondition("node \(to) is down (\(reason))") }
        guard !entry.replicas.contains(to) else { throw RPCError.failedPrecondition("node \(to) already holds a replica of \(shard)") }
        if let from, !entry.replicas.contains(from) {
            throw RPCError.failedPrecondition("node \(from) holds no replica of \(shard) (replicas: \(entry.replicas.joined(separator: ", ")))")
        }
        // Copy from the replica that leaves, unless it is down (draining a dead node) or stale:
        // then another in-sync one.
        let usable = { (node: String) in self.downReason(node) == nil && entry.inSync.contains(node) }
        guard let source = from.flatMap({ usable($0) ? $0 : nil }) ?? entry.replicas.first(where: usable) else {
            throw RPCError.failedPrecondition("no in-sync replica of \(shard) is up to copy from")
        }
        let move = ClusterMap.Move(id: Self.newMoveID(), shard: shard, source: source, from: from, to: to, phase: .copy)
        try await update { $0.record(move) }
        return move
    }

    static func newMoveID() -> String {
        String((0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined())
    }

    private func setPhase(of move: ClusterMap.Move, to phase: ClusterMap.Move.Phase) async throws -> ClusterMap.Move {
        var moved = move
        moved.phase = phase
        try await update { $0.record(moved) }
        return moved
    }

    /// Streams the source's checkpoint to the target and installs it there.
    private func copy(_ move: ClusterMap.Move, rate: UInt64) async throws {
        let (source, target) = (try client(move.source), try client(move.to))
        var create = Sparrow_V1_CreateCheckpointRequest()
        create.shard = move.shard
        create.moveID = move.id
        let checkpoint = try await source.call(ShardMethod.createCheckpoint, create, timeout: .seconds(600), as: Sparrow_V1_CreateCheckpointResponse.self)
        var throttle = Throttle(bytesPerSecond: rate)
        // A second round re-sends files the target found damaged: after a restart of the source
        // mid-checkpoint, the new checkpoint's files may differ from those received before.
        for round in 1...2 {
            do {
                try await send(checkpoint, of: move, from: source, to: target, throttle: &throttle)
                break
            } catch let error as RPCError where error.code == .failedPrecondition && round == 1 {
                logger.warning("move: the target refused the copy; sending the damaged files again", metadata: ["shard.id": "\(move.shard)", "error": "\(error)"])
            }
        }
    }

    /// Drops the source's checkpoint; until then the source's compactions keep the change log
    /// after it, which the target replays.
    private func dropCheckpoint(of move: ClusterMap.Move) async {
        var drop = Sparrow_V1_DropCheckpointRequest()
        drop.shard = move.shard
        drop.moveID = move.id
        _ = try? await client(move.source).call(ShardMethod.dropCheckpoint, drop, timeout: .seconds(60), as: Sparrow_V1_DropCheckpointResponse.self)
    }

    /// Sends each file from where the target stands, then has the target check and install them.
    private func send(
        _ checkpoint: Sparrow_V1_CreateCheckpointResponse, of move: ClusterMap.Move, from source: RPCClient, to target: RPCClient, throttle: inout Throttle
    ) async throws {
        let total = checkpoint.files.reduce(0) { $0 + $1.size }
        var before: UInt64 = 0   // bytes of the files done
        defer { copies.withLock { $0[move.id] = nil } }
        for file in checkpoint.files {
            var receive = Sparrow_V1_ReceiveCheckpointRequest()
            receive.shard = move.shard
            receive.moveID = move.id
            receive.name = file.name
            receive.epoch = cluster.epoch
            var received = try await target.call(ShardMethod.receiveCheckpoint, receive, timeout: .seconds(30), as: Sparrow_V1_ReceiveCheckpointResponse.self).received
            while received < file.size {
                copies.withLock { $0[move.id] = .init(copiedBytes: before + received, totalBytes: total) }
                try Task.checkCancellation()
                try requireOwner("moves")
                var read = Sparrow_V1_ReadCheckpointRequest()
                read.shard = move.shard
                read.moveID = move.id
                read.name = file.name
                read.offset = received
                read.length = UInt32(min(file.size - received, throttle.chunkBytes))
                receive.data = try await source.call(ShardMethod.readCheckpoint, read, timeout: .seconds(60), as: Sparrow_V1_ReadCheckpointResponse.self).data
                guard !receive.data.isEmpty else { throw RPCError(.internal, "\(move.source) sent no bytes of \(file.name) at offset \(received)") }
                receive.offset = received
                received = try await target.call(ShardMethod.receiveCheckpoint, receive, timeout: .seconds(60), as: Sparrow_V1_ReceiveCheckpointResponse.self).received
                try await throttle.pace(receive.data.count)
            }
            before += file.size
        }
        var install = Sparrow_V1_InstallCheckpointRequest()
        install.shard = move.shard
        install.moveID = move.id
        install.files = checkpoint.files
        install.epoch = cluster.epoch
        _ = try await target.call(ShardMethod.installCheckpoint, install, timeout: .seconds(600), as: Sparrow_V1_InstallCheckpointResponse.self)
    }

    /// Replays on the target every change the source has after the target's last one.
    private func catchUp(_ move: ClusterMap.Move) async throws {
        if case .diverged(let reason) = try await replay(move.shard, from: move.source, to: move.to) {
            throw RPCError.failedPrecondition("the copy on \(move.to) cannot catch up: \(reason); abort the move and start it again")
        }
    }

    /// The map names the target instead of `from` (or beside the others, when adding).
    private func switchReplicas(_ move: ClusterMap.Move) async throws -> ClusterMap.Move {
        var switched = move
        switched.phase = .switched
        try await update { map in
            guard let index = map.shards.firstIndex(where: { $0.id == move.shard }) else { return }
            var replicas = map.shards[index].replicas
            if let from = move.from, let position = replicas.firstIndex(of: from) {
                replicas[position] = move.to
            } else {
                replicas.append(move.to)
            }
            map.shards[index].replicas = replicas
            map.shards[index].markInSync(move.to)
            map.record(switched)
        }
        return switched
    }

    /// How long a replaced copy keeps serving after the switch: searches sent on the old map
    /// (here, or on a follower that has not fetched the new one yet) end within it.
    var dropGrace: Duration { defaultTimeout + MapFollower.defaultInterval * 2 }

    /// Drops the replaced copy (once searches sent on the old map are over) and ends the move.
    private func finishMove(_ move: ClusterMap.Move) async throws {
        await dropCheckpoint(of: move)
        if let from = move.from {
            if let reason = downReason(from) {
                logger.warning("move: the replaced node is down; its copy stays outside the map, an orphan the owner drops once the node is back",
                               metadata: ["shard.id": "\(move.shard)", "node.id": "\(from)", "error": "\(reason)"])
            } else {
                try await Task.sleep(for: dropGrace)
                try await dropShard(move.shard, on: from)
            }
        }
        try await update { $0.forgetMove(move.id) }
    }

    func dropShard(_ shard: String, on node: String) async throws {
        var drop = Sparrow_V1_DropShardRequest()
        drop.shard = shard
        drop.epoch = cluster.epoch
        _ = try await client(node).call(ShardMethod.dropShard, drop, timeout: .seconds(60), as: Sparrow_V1_DropShardResponse.self)
    }

    /// Rolls back a move not yet switched: the target's copy and the source's checkpoint go.
    private func abortMove(shard: String) async throws {
        guard let move = cluster.move(of: shard) else { throw RPCError.notFound("no move of \(shard) is in progress") }
        guard move.phase != .switched else {
            throw RPCError.failedPrecondition(
                "the move of \(shard) has switched: \(move.to) serves it; run move-shard again to finish (or move the shard back)")
        }
        do {
            try await dropShard(shard, on: move.to)
        } catch {
            logger.warning("move abort: the target's copy could not be dropped; it serves nothing (it is not in the map), and the owner drops it as an orphan once the node is back",
                           metadata: ["shard.id": "\(shard)", "node.id": "\(move.to)", "error": "\(error)"])
        }
        await dropCheckpoint(of: move)
        try await update { $0.forgetMove(move.id) }
        logger.info("move aborted", metadata: ["shard.id": "\(shard)", "move.id": "\(move.id)"])
    }
}

/// Paces a stream to at most `bytesPerSecond` (0: no limit).
struct Throttle {
    let bytesPerSecond: UInt64
    let started = ContinuousClock.now
    var sent: UInt64 = 0

    init(bytesPerSecond: UInt64) {
        self.bytesPerSecond = bytesPerSecond
    }

    /// The bytes to read at once: 1 MiB, or a quarter second's worth when throttled, so that
    /// a slow copy flows (and shows progress) rather than sending a mebibyte and then sleeping.
    var chunkBytes: UInt64 {
        bytesPerSecond == 0 ? 1 << 20 : min(1 << 20, max(4096, bytesPerSecond / 4))
    }

    mutating func pace(_ bytes: Int) async throws {
        sent += UInt64(bytes)
        guard bytesPerSecond > 0 else { return }
        let due = started + .milliseconds(Int64(sent * 1000 / bytesPerSecond))
        if due > .now { try await Task.sleep(until: due) }
    }
}
