import SparrowCoordinator
import Testing

@Suite struct PlacementPlannerTests {
    /// 12 shards of roughly equal size on 3 nodes, plus an empty fourth.
    func twelveShards(sizes: (Int) -> UInt64 = { 1_000_000 + UInt64($0 * 7_919 % 50_000) }) -> Placement {
        let nodes = ["n0", "n1", "n2"]
        var replicas: [String: [String]] = [:]
        var bytes: [String: UInt64] = [:]
        for s in 0..<12 {
            replicas["shard-\(s)"] = [nodes[s % 3]]
            bytes["shard-\(s)"] = sizes(s)
        }
        return Placement(replicas: replicas, bytes: bytes, eligible: nodes + ["n3"])
    }

    func counts(_ placement: Placement, after plan: [PlannedMove]) -> [String: Int] {
        var replicas = placement.replicas
        for move in plan {
            if let from = move.from { replicas[move.shard]!.removeAll { $0 == from } }
            if let to = move.to { replicas[move.shard]!.append(to) }
        }
        #expect(replicas.values.allSatisfy { Set($0).count == $0.count })
        return replicas.values.flatMap { $0 }.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    @Test func rebalanceSpreadsTwelveShardsOverFourNodes() {
        let placement = twelveShards()
        let plan = PlacementPlanner.rebalance(placement)
        #expect(plan.count == 3)
        #expect(plan.allSatisfy { $0.to == "n3" })
        #expect(counts(placement, after: plan) == ["n0": 3, "n1": 3, "n2": 3, "n3": 3])
        // A balanced placement needs no moves.
        var balanced = placement
        for move in plan { balanced.replicas[move.shard] = [move.to!] }
        #expect(PlacementPlanner.rebalance(balanced).isEmpty)
    }

    @Test func emptyShardsSpreadByCount() {
        let placement = twelveShards(sizes: { _ in 0 })
        #expect(counts(placement, after: PlacementPlanner.rebalance(placement)).values.sorted() == [3, 3, 3, 3])
    }

    @Test func rebalanceKeepsReplicasApart() {
        // Two replicas of every shard on n0 and n1; n2 empty: moves must never put both on one node.
        let replicas = Dictionary(uniqueKeysWithValues: (0..<6).map { ("s\($0)", ["n0", "n1"]) })
        let placement = Placement(replicas: replicas, bytes: [:], eligible: ["n0", "n1", "n2"])
        let plan = PlacementPlanner.rebalance(placement)
        #expect(counts(placement, after: plan) == ["n0": 4, "n1": 4, "n2": 4])
    }

    @Test func drainMovesEveryReplicaToNodesWithoutOne() throws {
        let placement = Placement(
            replicas: ["a": ["n0", "n1"], "b": ["n0"], "c": ["n2", "n0"]], bytes: ["a": 5, "b": 9, "c": 1], eligible: ["n0", "n1", "n2"])
        let plan = try PlacementPlanner.drain("n0", placement)
        #expect(plan.map(\.shard) == ["b", "a", "c"])   // largest first
        #expect(plan.allSatisfy { $0.from == "n0" && $0.to != nil && $0.to != "n0" })
        #expect(counts(placement, after: plan)["n0"] == nil)
        #expect(throws: PlanError.self) {
            try PlacementPlanner.drain("n0", Placement(replicas: ["a": ["n0", "n1"]], bytes: [:], eligible: ["n0", "n1"]))
        }
    }

    @Test func setReplicasAddsToTheLightestAndRemovesFromTheHeaviest() throws {
        let placement = Placement(
            replicas: ["a": ["n0"], "b": ["n1"], "c": ["n1"]], bytes: ["a": 10, "b": 10, "c": 10], eligible: ["n0", "n1", "n2"])
        let up = try PlacementPlanner.setReplicas("a", 3, placement)
        #expect(up.map(\.to) == ["n2", "n1"])
        #expect(up.allSatisfy { $0.from == nil })
        let down = try PlacementPlanner.setReplicas("b", 1, Placement(replicas: ["b": ["n0", "n1"], "c": ["n1"]], bytes: [:], eligible: ["n0", "n1"]))
        #expect(down == [PlannedMove(shard: "b", from: "n1", to: nil, bytes: 0)])
        #expect(throws: PlanError.self) { try PlacementPlanner.setReplicas("a", 4, placement) }
        #expect(throws: PlanError.self) { try PlacementPlanner.setReplicas("a", 0, placement) }
    }
}
