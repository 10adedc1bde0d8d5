import Foundation
import Logging
import Metrics
import ServiceLifecycle
import SparrowEtcd
import SparrowWire

/// A coordinator's part in the control plane on etcd: it registers under a lease and keeps it
/// alive, watches the cluster's keys (the map and every coordinator), and acts on its role:
/// - owner: it takes over (reads the map, raises the epoch in a guarded transaction, so that
///   nodes refuse the last owner's calls, and resumes the moves recorded in the map);
/// - follower: it puts the owner's map in force as the watch delivers it.
/// When its lease lapses (etcd unreachable, or without quorum), it registers again once it can;
/// meanwhile it serves searches from the last map and refuses changes.
public struct EtcdControlPlane: Service {
    let coordinator: Coordinator
    let store: EtcdMapStore
    let record: CoordinatorRecord
    /// The lease's time to live, in seconds.
    let ttl: Int
    let logger: Logger

    public init(coordinator: Coordinator, store: EtcdMapStore, record: CoordinatorRecord, ttl: Int) {
        self.coordinator = coordinator
        self.store = store
        self.record = record
        self.ttl = ttl
        logger = coordinator.logger
    }

    var client: EtcdClient { store.client }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.campaign() }
                group.addTask { await self.watchKeys() }
                group.addTask { await self.followRole() }
                await group.next()
                group.cancelAll()
            }
        }
        if let lease = store.elect({ $0.me }).flatMap({ Self.lease(ofKey: $0.key) }) {
            // Stepping down at once: another coordinator takes over without waiting for the TTL.
            try? await client.revoke(lease: lease)
            logger.info("left the control plane (lease revoked)", metadata: ["etcd.lease": "\(String(UInt64(bitPattern: lease), radix: 16))"])
        }
    }

    // MARK: Lease

    /// Registers under a lease and renews it every quarter of its TTL; registers again when it is lost.
    func campaign() async {
        let renewEvery = Duration.milliseconds(max(200, ttl * 1000 / 4))
        while !Task.isCancelled {
            do {
                let sent = ContinuousClock.now
                let lease = try await client.grantLease(ttl: ttl)
                let key = store.keys.coordinator(lease: lease.id)
                let created = try await client.txn(.init(if: [.created(key, at: 0)], then: [.put(key, record.data, lease: lease.id)]))
                guard created.succeeded == true, let revision = created.header?.revision?.value else {
                    throw EtcdError.refused(endpoint: client.currentEndpoint, code: 0, message: "key \(key) exists already")
                }
                store.elect { $0.registered(.init(key: key, createRevision: revision, value: record.data), sentAt: sent, ttl: .seconds(lease.ttl)) }
                logger.info("registered in etcd", metadata: ["etcd.key": "\(key)", "etcd.revision": "\(revision)", "etcd.ttl_s": "\(lease.ttl)"])
                try await renew(lease: lease.id, every: renewEvery)
            } catch is CancellationError {
                return
            } catch {
                logger.warning("etcd: cannot register or renew; serving the last map, refusing changes", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    /// Renews `lease` until etcd says it is gone (then returns) or the task is cancelled. A
    /// failed renewal is tried again at once on the next endpoint, each given a quarter of the
    /// TTL, so that losing one etcd member (even its leader) costs less than the lease.
    private func renew(lease: Int64, every interval: Duration) async throws {
        let attempt = Duration.milliseconds(max(250, ttl * 1000 / 4))
        var wait = interval
        while true {
            try await Task.sleep(for: wait)
            wait = .milliseconds(100)
            let sent = ContinuousClock.now
            do {
                let left = try await client.keepAlive(lease: lease, timeout: attempt)
                guard left > 0 else {
                    store.elect { $0.leaseLost() }
                    logger.warning("etcd: the lease expired; registering again", metadata: ["etcd.lease": "\(String(UInt64(bitPattern: lease), radix: 16))"])
                    Counter(label: "sparrow_coordinator_lease_lost_total").increment()
                    return
                }
                store.elect { $0.renewed(sentAt: sent, ttl: .seconds(left)) }
                wait = interval
            } catch let error as EtcdError {
                // Keep trying on the next endpoint until the lease may have lapsed: then the role
                // turns `unavailable` by itself (see `Election`).
                logger.warning("etcd: lease renewal failed", metadata: ["error": "\(error)"])
            }
        }
    }

    static func lease(ofKey key: String) -> Int64? {
        guard let hex = key.split(separator: "/").last, let value = UInt64(hex, radix: 16) else { return nil }
        return Int64(bitPattern: value)
    }

    // MARK: Watch

    /// Reads the cluster's keys, then watches them from the next revision; starts again (read,
    /// then watch) when the stream ends or the client moves to another endpoint.
    func watchKeys() async {
        while !Task.isCancelled {
            do {
                let (kvs, revision) = try await client.list(prefix: store.keys.prefix)
                store.elect { $0.reset(kvs.compactMap(candidate), asOf: revision) }
                if let map = kvs.first(where: { String(decoding: $0.key, as: UTF8.self) == store.keys.map }) { try await learn(map) }
                let endpoints = client.endpointChanges
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await client.watch(prefix: store.keys.prefix, from: revision + 1) { batch in try await apply(batch) }
                    }
                    group.addTask {
                        // A member cut off from the others keeps the stream open and silent:
                        // move with the client when its calls (renewals) find the endpoint bad.
                        while client.endpointChanges == endpoints { try await Task.sleep(for: .milliseconds(100)) }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("etcd: watch ended; reading again", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func apply(_ batch: EtcdClient.WatchBatch) async throws {
        for event in batch.events {
            guard let kv = event.kv else { continue }
            let key = String(decoding: kv.key, as: UTF8.self)
            if key == store.keys.map {
                if event.type != "DELETE" { try await learn(kv) }
            } else if key.hasPrefix(store.keys.coordinators) {
                if event.type == "DELETE" {
                    store.elect { $0.gone(key) }
                } else if let candidate = candidate(kv) {
                    store.elect { $0.saw(candidate) }
                }
            }
        }
    }

    private func candidate(_ kv: EtcdWire.KeyValue) -> Election.Candidate? {
        let key = String(decoding: kv.key, as: UTF8.self)
        guard key.hasPrefix(store.keys.coordinators), let revision = kv.create_revision?.value else { return nil }
        return .init(key: key, createRevision: revision, value: kv.value ?? Data())
    }

    /// Puts a map read from etcd in force, unless this coordinator wrote it (or a newer one).
    private func learn(_ kv: EtcdWire.KeyValue) async throws {
        let revision = kv.mod_revision?.value ?? 0
        guard revision > store.mapRevision, let value = kv.value else { return }
        let map = try EtcdMapStore.decode(value, location: store.location)
        let installed = try await coordinator.maps.install(map)
        store.mapRevision = revision
        if installed { logger.info("map learnt from etcd", metadata: ["cluster.epoch": "\(map.epoch)", "etcd.revision": "\(revision)"]) }
    }

    // MARK: Role

    /// Checks the role every 50 ms and acts when it changes: an elected coordinator takes over
    /// (once per registration) before it owns the map; one that stops owning it stops its
    /// operations; one that owns it again resumes the moves the map records.
    func followRole() async {
        var last = store.ownership   // unregistered at first: nothing to say
        while !Task.isCancelled {
            if case .owner(let me) = store.role, !store.hasTakenOver(as: me) {
                logger.notice("this coordinator was elected owner of the cluster map; taking over")
                do {
                    try await takeOver()
                    store.tookOver(as: me)
                } catch {
                    logger.error("takeover failed; trying again", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
            }
            let now = store.ownership
            if now != last {
                Gauge(label: "sparrow_coordinator_is_owner").record(now == .owner ? 1 : 0)
                switch now {
                case .owner:
                    logger.notice("this coordinator owns the cluster map", metadata: ["cluster.epoch": "\(coordinator.cluster.epoch)"])
                    coordinator.resumeMoves()
                case .follower(let owner):
                    if last == .owner { coordinator.stopOperations() }
                    logger.info("following the owner of the cluster map", metadata: ["cluster.owner": "\(owner ?? "none yet")"])
                case .unavailable(let reason):
                    if last == .owner { coordinator.stopOperations() }
                    logger.warning("not acting as owner: \(reason)")
                }
                last = now
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The first acts of a new owner: the map as etcd holds it, and a new epoch above any a node
    /// has seen (saved only while this coordinator is elected: nodes then refuse the last
    /// owner's writes; and a map restored from an older snapshot still moves epochs forward).
    private func takeOver() async throws {
        if let (map, revision) = try await store.load() {
            try await coordinator.maps.install(map)
            store.mapRevision = revision
        }
        let seen = await coordinator.nodeHealth().values.compactMap { try? $0.get().epoch }.max() ?? 0
        let map = try await coordinator.update { map in map.epoch = max(map.epoch, seen) }
        logger.notice("took over the cluster map", metadata: ["cluster.epoch": "\(map.epoch)", "etcd.revision": "\(store.mapRevision)"])
        Counter(label: "sparrow_coordinator_takeovers_total").increment()
    }
}
