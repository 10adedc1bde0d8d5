import Logging
import SparrowCoordinator
import SparrowCore
import SparrowWire
import Testing

/// Stored fields (`"fields": true`, the console) come from a replica of each hit's shard within
/// the time the search was given, whichever replica stalls.
@Suite struct StoredFieldsTests {
    /// A shard node that answers GetDocument with a title after `delay`.
    static func node(answeringAfter delay: Duration) async throws -> RPCServer {
        var routes = RPCRoutes()
        routes.on(ShardMethod.getDocument) { (request: Sparrow_V1_GetDocumentRequest, _) in
            try await Task.sleep(for: delay)
            var response = Sparrow_V1_GetDocumentResponse()
            response.found = true
            response.document.id = request.id
            response.document.fields = .init(["title": "about \(request.id)"])
            return response
        }
        return try await RPCServer.bind(Endpoint(host: "127.0.0.1", port: 0), service: routes, logger: Logger(label: "test"))
    }

    /// The first replica stalls: the second one's answer still comes within the search's time
    /// (before: the stalled one took all of it, and the second one as much again).
    @Test func aStalledReplicaLeavesTimeForTheNext() async throws {
        let stalled = try await Self.node(answeringAfter: .seconds(5))
        let well = try await Self.node(answeringAfter: .zero)
        let map = ClusterMap(
            epoch: 1, nodes: [.init(id: "n1", address: "\(stalled.address)"), .init(id: "n2", address: "\(well.address)")],
            shards: [.init(id: "shard-0", replicas: ["n1", "n2"])])
        let coordinator = try Coordinator(cluster: map, encoder: nil, logger: Logger(label: "test"))
        let hits = ["d1", "d2"].map { SearchResult.RankedHit(shard: "shard-0", hit: Hit(id: $0, doc: 0, score: 1, rawScore: 1)) }
        let started = ContinuousClock.now
        let fields = await coordinator.storedFields(of: hits, within: .seconds(1))
        let took = ContinuousClock.now - started
        #expect(fields == [["title": "about d1"], ["title": "about d2"]])
        #expect(took < .seconds(1), "stored fields took \(took) of a 1 s search")
        await stalled.shutdown()
        await well.shutdown()
    }
}
