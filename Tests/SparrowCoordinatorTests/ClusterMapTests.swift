import SparrowCoordinator
import Testing

@Suite struct ClusterMapTests {
    let valid = """
        epoch: 4
        nodes:
          - id: a
            address: 127.0.0.1:7100
          - id: b
            address: 127.0.0.1:7101
        shards:
          - id: shard-0
            replicas: [a, b]
          - id: shard-1
            replicas: [b]
        """

    @Test func parsesAndRoundTripsThroughYAML() throws {
        let map = try ClusterMap.parse(valid, path: "cluster.yaml")
        #expect(map.epoch == 4)
        #expect(map.shards.map(\.replicas) == [["a", "b"], ["b"]])
        #expect(map.address(of: "b") == "127.0.0.1:7101")
        #expect(try ClusterMap.parse(try map.yaml(), path: "again.yaml") == map)
    }

    @Test func staleReplicasServeNothingAndRoundTrip() throws {
        let text = valid.replacingOccurrences(of: "replicas: [a, b]", with: "replicas: [a, b]\n    stale: [a]")
        let map = try ClusterMap.parse(text, path: "cluster.yaml")
        #expect(map.shards[0].inSync == ["b"] && map.shards[1].inSync == ["b"])
        #expect(try ClusterMap.parse(try map.yaml(), path: "again.yaml") == map)
    }

    @Test(arguments: [
        ("replicas: [a, b]", "replicas: [a, c]", "replica 'c' is not a listed node"),
        ("address: 127.0.0.1:7101", "address: nowhere", "is not host:port"),
        ("epoch: 4", "epoch: four", "field 'epoch'"),
        ("  - id: shard-1", "  - id: shard-0", "shard 'shard-0' is listed twice"),
        ("replicas: [b]", "replicas: []", "shard 'shard-1' has no replicas"),
        ("replicas: [b]", "replicas: [b]\n    stale: [a]", "stale replica 'a' is not one of its replicas"),
        ("replicas: [b]", "replicas: [b]\n    stale: [b]", "every replica is stale"),
    ])
    func errorsNameTheFileAndTheProblem(original: String, replacement: String, expected: String) {
        let text = valid.replacingOccurrences(of: original, with: replacement)
        do {
            _ = try ClusterMap.parse(text, path: "bad.yaml")
            Issue.record("accepted: \(replacement)")
        } catch {
            #expect("\(error)".hasPrefix("bad.yaml: "))
            #expect("\(error)".contains(expected), "\(error)")
        }
    }
}
