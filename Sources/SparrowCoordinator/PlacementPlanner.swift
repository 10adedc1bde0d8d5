/// Where shard replicas live, as the planner sees it: replica sets, each shard's size, and the
/// nodes that may receive shards (up and not draining).
public struct Placement: Sendable, Equatable {
    public var replicas: [String: [String]]
    public var bytes: [String: UInt64]
    public var eligible: [String]

    public init(replicas: [String: [String]], bytes: [String: UInt64], eligible: [String]) {
        self.replicas = replicas
        self.bytes = bytes
        self.eligible = eligible
    }

    /// A shard's weight in the balance: its bytes, and at least 1 so that empty shards spread too.
    func weight(_ shard: String) -> UInt64 { max(bytes[shard] ?? 0, 1) }

    func shards(on node: String) -> [String] {
        replicas.filter { $0.value.contains(node) }.keys.sorted()
    }

    func load(_ node: String) -> UInt64 {
        shards(on: node).reduce(0) { $0 + weight($1) }
    }

    mutating func apply(_ move: PlannedMove) {
        var nodes = replicas[move.shard] ?? []
        if let from = move.from { nodes.removeAll { $0 == from } }
        if let to = move.to { nodes.append(to) }
        replicas[move.shard] = nodes
    }
}

/// One step of a plan: a shard copied from one node to another (nil `from`: a replica added;
/// nil `to`: a replica removed).
public struct PlannedMove: Sendable, Equatable, CustomStringConvertible {
    public var shard: String
    public var from: String?
    public var to: String?
    public var bytes: UInt64

    public init(shard: String, from: String?, to: String?, bytes: UInt64) {
        self.shard = shard
        self.from = from
        self.to = to
        self.bytes = bytes
    }

    public var description: String { "\(shard): \(from ?? "(new replica)") → \(to ?? "(removed)")" }
}

public struct PlanError: Error, CustomStringConvertible {
    public var description: String
}

/// Plans replica placements: pure functions of a `Placement`, so every rule is tested without
/// a cluster. Replicas of one shard always stay on different nodes.
public enum PlacementPlanner {
    /// The eligible node without a replica of `shard` carrying the least weight (ties: fewer
    /// shards, then node id).
    static func target(for shard: String, in placement: Placement, excluding excluded: Set<String> = []) -> String? {
        let holders = Set(placement.replicas[shard] ?? [])
        return placement.eligible.filter { !holders.contains($0) && !excluded.contains($0) }
            .min { (placement.load($0), placement.shards(on: $0).count, $0) < (placement.load($1), placement.shards(on: $1).count, $1) }
    }

    /// Moves every replica off `node`, largest first, each to the lightest node that may take it.
    public static func drain(_ node: String, _ placement: Placement) throws -> [PlannedMove] {
        var placement = placement
        placement.eligible.removeAll { $0 == node }
        let shards = placement.shards(on: node).sorted { (placement.weight($0), $1) > (placement.weight($1), $0) }
        return try shards.map { shard in
            guard let to = target(for: shard, in: placement) else {
                throw PlanError(description: "no node can take \(shard) from \(node): every other node in service already holds a replica of it")
            }
            let move = PlannedMove(shard: shard, from: node, to: to, bytes: placement.bytes[shard] ?? 0)
            placement.apply(move)
            return move
        }
    }

    /// Adds replicas on the lightest nodes, or removes them from the heaviest, until `shard` has `count`.
    public static func setReplicas(_ shard: String, _ count: Int, _ placement: Placement) throws -> [PlannedMove] {
        guard let current = placement.replicas[shard] else { throw PlanError(description: "no shard \(shard)") }
        guard count >= 1 else { throw PlanError(description: "a shard needs at least 1 replica, not \(count)") }
        var placement = placement
        var moves: [PlannedMove] = []
        for _ in current.count..<max(count, current.count) {
            guard let to = target(for: shard, in: placement) else {
                throw PlanError(description: "\(shard) cannot have \(count) replicas: only \(placement.replicas[shard]!.count + placement.eligible.filter { !placement.replicas[shard]!.contains($0) }.count) nodes may hold it")
            }
            moves.append(PlannedMove(shard: shard, from: nil, to: to, bytes: placement.bytes[shard] ?? 0))
            placement.apply(moves.last!)
        }
        for _ in count..<max(count, current.count) {
            let from = placement.replicas[shard]!.max { (placement.load($0), $1) < (placement.load($1), $0) }!
            moves.append(PlannedMove(shard: shard, from: from, to: nil, bytes: placement.bytes[shard] ?? 0))
            placement.apply(moves.last!)
        }
        return moves
    }

    /// Moves shards from the heaviest eligible node to the lightest while that narrows the gap:
    /// each move picks the shard that leaves the two closest. Every move lowers the sum of
    /// squared loads, so the plan ends.
    public static func rebalance(_ placement: Placement) -> [PlannedMove] {
        var placement = placement
        var moves: [PlannedMove] = []
        while placement.eligible.count > 1 {
            let order = placement.eligible.map { (node: $0, load: placement.load($0), count: placement.shards(on: $0).count) }
            let heavy = order.max { ($0.load, $0.count, $1.node) < ($1.load, $1.count, $0.node) }!
            let light = order.min { ($0.load, $0.count, $0.node) < ($1.load, $1.count, $1.node) }!
            let candidates = placement.shards(on: heavy.node).filter {
                !(placement.replicas[$0] ?? []).contains(light.node) && light.load + placement.weight($0) < heavy.load
            }
            func gap(_ shard: String) -> UInt64 {
                let w = placement.weight(shard)
                let (h, l) = (heavy.load - w, light.load + w)
                return h > l ? h - l : l - h
            }
            guard let shard = candidates.min(by: { (gap($0), $0) < (gap($1), $1) }) else { break }
            let move = PlannedMove(shard: shard, from: heavy.node, to: light.node, bytes: placement.bytes[shard] ?? 0)
            placement.apply(move)
            moves.append(move)
        }
        return moves
    }
}
