import Logging
import SparrowCoordinator
import SparrowWire
import Testing

/// The coordinator's routes decode exactly the request types `CoordinatorMethod.requestTypes`
/// names (the fuzzers decode by that table).
@Suite struct RouteTableTests {
    @Test func routesDecodeTheRequestTypesOfTheMethodTable() throws {
        let map = ClusterMap(epoch: 1, nodes: [.init(id: "n1", address: "127.0.0.1:1")], shards: [.init(id: "shard-0", replicas: ["n1"])])
        let routes = try Coordinator(cluster: map, encoder: nil, logger: Logger(label: "test")).routes
        #expect(routes.methods == CoordinatorMethod.all.sorted())
        #expect(Set(CoordinatorMethod.requestTypes.keys) == Set(CoordinatorMethod.all))
        for method in CoordinatorMethod.all {
            let routed = routes.requestType(of: method).map(ObjectIdentifier.init)
            let listed = CoordinatorMethod.requestTypes[method].map(ObjectIdentifier.init)
            #expect(routed != nil && routed == listed, "\(method)")
        }
    }
}
