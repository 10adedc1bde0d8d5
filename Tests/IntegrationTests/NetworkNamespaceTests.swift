import Foundation
import Testing

/// `ops/netns-test`: four nodes and a coordinator in separate network namespaces, operated
/// with the CLI; `ops/netns-etcd-test`: three coordinators and three etcd members on three hosts. Needs root and `ip netns` (CI runs as root); elsewhere the test is skipped.
@Suite struct NetworkNamespaceTests {
    static let available: Bool = {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip") else {
            return false
        }
        let probe = "sparrow-probe-\(getpid())"
        guard (try? LocalTestCluster.run(executable: "/bin/sh", ["-c", "ip netns add \(probe)"]).status) == 0 else { return false }
        _ = try? LocalTestCluster.run(executable: "/bin/sh", ["-c", "ip netns del \(probe)"])
        return true
    }()

    @Test(.enabled(if: available, "needs root and ip netns"))
    func nodesAndCoordinatorInSeparateNamespaces() throws {
        let result = try LocalTestCluster.run(executable: ClientTests.root + "/ops/netns-test", [LocalTestCluster.binary])
        #expect(result.status == 0, "\(result.text)")
        #expect(result.text.contains("netns-test: ok"), "\(result.text)")
    }

    @Test(.enabled(if: available && EtcdTestCluster.available, "needs root, ip netns and etcd"))
    func coordinatorsAndEtcdMembersOnThreeHostsSurviveTheOwnersHostCutOff() throws {
        let result = try LocalTestCluster.run(executable: ClientTests.root + "/ops/netns-etcd-test", [LocalTestCluster.binary])
        #expect(result.status == 0, "\(result.text)")
        #expect(result.text.contains("netns-etcd-test: ok"), "\(result.text)")
    }
}
