import Foundation
import Logging
import SparrowCoordinator
import SparrowWire
import SwiftProtobuf
import Testing

@Suite struct CoordinatorErrorTests {
    static let map = ClusterMap(epoch: 3, nodes: [.init(id: "n1", address: "127.0.0.1:1")], shards: [.init(id: "shard-0", replicas: ["n1"])])

    static func call(_ coordinator: Coordinator, _ method: String, _ request: some SwiftProtobuf.Message) async -> RPCError? {
        do {
            _ = try await coordinator.routes.call(method: method, payload: try request.serializedBytes(), deadline: nil)
            return nil
        } catch {
            return RPCError(error)
        }
    }

    /// A store that counts its saves.
    final class CountingStore: ClusterMapStore, @unchecked Sendable {
        var saves = 0
        let location = "test map"
        let ownership = MapOwnership.owner
        func save(_ map: ClusterMap) async throws { saves += 1 }
    }

    /// A change that would leave the map invalid (a replica on a node the map does not list) is
    /// the caller's mistake: `failed_precondition` naming the map and what is wrong, not
    /// `internal`; nothing is saved and the map in force stays.
    @Test func aChangeThatWouldBreakTheMapIsAFailedPreconditionNotInternal() async throws {
        let store = CountingStore()
        let keeper = ClusterMapKeeper(Self.map, store: store)
        do {
            try await keeper.replace { $0.shards[0].replicas = ["n99"] }
            Issue.record("an invalid map was accepted")
        } catch {
            let wire = RPCError(error)
            #expect(wire.code == .failedPrecondition, "\(wire)")
            #expect(wire.message.contains("test map") && wire.message.contains("'n99' is not a listed node"), "\(wire)")
            #expect((error as? CoordinatorError)?.code == "map_invalid")
        }
        #expect(keeper.current == Self.map && store.saves == 0)
        try await keeper.replace { $0.epoch += 1 }
        #expect(keeper.current.epoch == 4 && store.saves == 1)
    }

    /// A follower refuses a change naming the owner; with no owner known, `unavailable`.
    @Test func aFollowerRefusesNamingTheOwner() async throws {
        let follower = try Coordinator(cluster: Self.map, owner: "10.0.0.9:7000", encoder: nil, logger: Logger(label: "test"))
        var remove = Sparrow_V1_RemoveNodeRequest()
        remove.node = "n1"
        let error = try #require(await Self.call(follower, CoordinatorMethod.removeNode, remove))
        #expect(error.code == .failedPrecondition && error.message.contains("follows 10.0.0.9:7000"), "\(error)")
        #expect(CoordinatorError.notOwner(what: "writes", owner: nil).rpcError.code == .unavailable)
        #expect(CoordinatorError.mapUnavailable(what: "writes", reason: "etcd").code == "map_unavailable")
    }
}
