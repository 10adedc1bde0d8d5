import Foundation
import SparrowClient
import SparrowWire
import Testing

/// The client library's own refusals, before anything is sent or started.
@Suite struct ClientLibraryTests {
    @Test func onlyMapChangesGoThroughChangeMap() async throws {
        // Nothing listens here: the refusal must come before any connection.
        let client = ClusterClient(Endpoint(host: "127.0.0.1", port: 9))
        let error = await #expect(throws: RPCError.self) { try await client.changeMap(CoordinatorMethod.search, Sparrow_V1_QueryRequest()) }
        #expect(error?.code == .invalidArgument && error?.message.contains("not a map change") == true, "\(String(describing: error))")
        await client.close()
    }

    @Test func theLauncherRefusesABadLayoutAndAClusterAlreadyUp() throws {
        let data = NSTemporaryDirectory() + "sparrow-launcher-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        var launcher = LocalClusterLauncher(shards: 2, nodes: 2, data: data, binary: "/nonexistent/sparrow")
        launcher.replicas = 3
        #expect(throws: LocalClusterError.self) { try launcher.up() }
        launcher.replicas = 2
        #expect(launcher.layout.placement == [["node-0", "node-1"], ["node-1", "node-0"]])
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: LocalCluster.path(data)))
        let error = #expect(throws: LocalClusterError.self) { try launcher.up() }
        #expect(error?.description.contains("a local cluster is up there") == true)
    }
}
