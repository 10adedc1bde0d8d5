import Foundation
import SparrowEtcd

/// The control plane as etcd holds it, for `sparrow ctl status`: every coordinator with its
/// lease, which one owns the map, the map's epoch, and the health of each etcd member.
public struct ControlPlaneStatus: Sendable {
    public struct Coordinator: Sendable {
        public var record: CoordinatorRecord
        public var key: String
        /// Seconds its lease has left (nil: expired, or not known).
        public var leaseSecondsLeft: Int?
    }

    public struct Member: Sendable {
        public var endpoint: String
        /// nil when it answered; else why not.
        public var error: String?
        public var version: String?
        public var isLeader = false
        public var raftTerm: Int64?
    }

    /// Oldest first: the first one owns the map.
    public var coordinators: [Coordinator]
    public var mapEpoch: UInt64?
    public var mapRevision: Int64?
    public var members: [Member]
}

extension EtcdMapStore {
    /// Reads the control plane's state from etcd (each member asked at its own endpoint).
    public func status() async throws -> ControlPlaneStatus {
        let members = await withTaskGroup(of: ControlPlaneStatus.Member.self) { group in
            for endpoint in client.endpoints {
                group.addTask {
                    do {
                        let status = try await self.client.status(of: endpoint)
                        return .init(endpoint: endpoint, version: status.version, isLeader: status.leader != nil && status.leader == status.header?.member_id,
                                     raftTerm: status.raftTerm?.value)
                    } catch {
                        return .init(endpoint: endpoint, error: "\(error)")
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }.sorted { $0.endpoint < $1.endpoint }
        }
        let (kvs, _) = try await client.list(prefix: keys.coordinators)
        var coordinators: [ControlPlaneStatus.Coordinator] = []
        for kv in kvs {
            guard let record = kv.value.flatMap(CoordinatorRecord.init(data:)) else { continue }
            var left: Int?
            if let lease = kv.lease?.value { left = (try? await client.timeToLive(lease: lease)) ?? nil }
            coordinators.append(.init(record: record, key: String(decoding: kv.key, as: UTF8.self), leaseSecondsLeft: left))
        }
        let map = try await load()
        return ControlPlaneStatus(coordinators: coordinators, mapEpoch: map?.map.epoch, mapRevision: map?.revision, members: members)
    }
}
