import Foundation
import Logging
import SparrowShard
import SparrowWire
import Testing

/// The node's routes decode exactly the request types `ShardMethod.requestTypes` names (the
/// fuzzers decode by that table).
@Suite struct RouteTableTests {
    @Test func routesDecodeTheRequestTypesOfTheMethodTable() throws {
        let directory = NSTemporaryDirectory() + "sparrow-node-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let routes = try ShardNode(nodeID: "n", dataDirectory: directory, logger: Logger(label: "test")).routes
        #expect(routes.methods == ShardMethod.all.sorted())
        #expect(Set(ShardMethod.requestTypes.keys) == Set(ShardMethod.all))
        for method in ShardMethod.all {
            let routed = routes.requestType(of: method).map(ObjectIdentifier.init)
            let listed = ShardMethod.requestTypes[method].map(ObjectIdentifier.init)
            #expect(routed != nil && routed == listed, "\(method)")
        }
    }
}
