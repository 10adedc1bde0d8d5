import Foundation
import Logging
import SparrowCoordinator
import SparrowWire
import Testing

/// A follower coordinator against a stand-in owner and stand-in shard nodes, over real sockets
/// on 127.0.0.1.
@Suite struct FollowerTests {
    /// A stand-in shard node: it answers Health.
    static func node() async throws -> RPCServer {
        var routes = RPCRoutes()
        routes.immediate(ShardMethod.health) { (_: Sparrow_V1_HealthRequest, _) -> Sparrow_V1_HealthResponse in
            var response = Sparrow_V1_HealthResponse()
            response.serving = true
            return response
        }
        return try await RPCServer.bind(Endpoint(host: "127.0.0.1", port: 0), service: routes, logger: Logger(label: "test"))
    }

    /// A stand-in owner whose map (epoch 2) has node n1 at `address`.
    static func owner(mapping address: Endpoint) async throws -> RPCServer {
        var replica = Sparrow_V1_Replica()
        replica.node = "n1"
        var shard = Sparrow_V1_ShardAssignment()
        shard.shard = "shard-0"
        shard.replicas = [replica]
        var node = Sparrow_V1_NodeStatus()
        node.node = "n1"
        node.address = "\(address)"
        var map = Sparrow_V1_ClusterResponse()
        map.epoch = 2
        map.nodes = [node]
        map.shards = [shard]
        let answer = map
        var routes = RPCRoutes()
        routes.immediate(CoordinatorMethod.cluster) { (_: Sparrow_V1_ClusterRequest, _) in answer }
        return try await RPCServer.bind(Endpoint(host: "127.0.0.1", port: 0), service: routes, logger: Logger(label: "test"))
    }

    /// The owner moved n1 to another address: once the follower adopts that map, its calls to n1
    /// go to the new address, not to the old one it had a client for.
    @Test func aFollowerCallsANodeWhereItsOwnersMapMovedIt() async throws {
        let old = try await Self.node()
        let new = try await Self.node()
        let owner = try await Self.owner(mapping: new.address)
        let map = ClusterMap(epoch: 1, nodes: [.init(id: "n1", address: "\(old.address)")], shards: [.init(id: "shard-0", replicas: ["n1"])])
        let follower = try Coordinator(cluster: map, owner: "\(owner.address)", encoder: nil, logger: Logger(label: "test"))
        #expect(await follower.nodeHealth()["n1"].map { (try? $0.get()) != nil } == true)
        await old.shutdown()

        let following = Task { try await MapFollower(coordinator: follower, interval: .milliseconds(20)).run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while follower.cluster.epoch < 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        following.cancel()
        try? await following.value
        #expect(follower.cluster.address(of: "n1") == "\(new.address)")
        #expect(await follower.nodeHealth()["n1"].map { (try? $0.get()) != nil } == true, "n1 is asked at its old address")

        await follower.close()
        await owner.shutdown()
        await new.shutdown()
    }
}
