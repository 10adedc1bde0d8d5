import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import SparrowClient
import SparrowCore
import SparrowCoordinator
import SparrowSecurity
import SparrowShard
import SparrowStorage
import SparrowWire

struct BenchClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Latency and throughput of a local cluster (1, 2, 4 shards) next to the in-process engine, at 1, 8, 32 clients.",
        discussion: """
        The in-process engine is one shard holding every document, searched by N threads at once; for \
        each shard count S above 1, the same documents split over S shards in this process, each \
        query searching them one after another (the cost of sharding without the wire). The \
        cluster is `sparrow local up` (separate processes on 127.0.0.1) searched through the coordinator's \
        protobuf/TCP API by N concurrent callers. Same query vectors, same k, same run. With \
        `--transports plain,tls` each shard count also runs a `local up --secure` cluster (mutual TLS between \
        the processes, callers with a read API key over TLS), up at the same time as the plaintext one, \
        the timed passes alternating between the two: rows `wire+tls` and `cluster+tls`, and a \
        `tls_cost` section comparing CPU per query with the plaintext cluster of the same shape.
        """
    )

    @Option(help: "Document vectors (JSONL, optionally .gz).")
    var docs: String

    @Option(help: "Query vectors (JSONL, optionally .gz).")
    var queries: String

    @Option(help: "Hits per query.")
    var k: Int = 10

    @Option(help: "Shard counts, comma-separated.")
    var shards: String = "1,2,4"

    @Option(help: "Concurrent callers, comma-separated.")
    var clients: String = "1,8,32"

    @Option(help: "Timed passes over the queries per configuration.")
    var passes: Int = 2

    @Option(help: "Cluster transports, comma-separated: plain (plaintext on loopback), tls (local up --secure).")
    var transports: String = "plain"

    @Option(help: "Another sparrow binary (e.g. the build before a change): its clusters run beside this binary's, the passes alternating; rows marked @baseline and a baseline_cost section.")
    var baseline: String?

    func run() async throws {
        ServerRuntime.runTasksOnEventLoops()
        let shardCounts = try Self.integers(shards, "--shards")
        let concurrency = try Self.integers(clients, "--clients")
        let queryVectors = try TokenVectorRecord.readAll(path: queries).map(\.vector)
        let documents = try TokenVectorRecord.readAll(path: docs)
        let scratch = NSTemporaryDirectory() + "sparrow-bench-cluster-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var rows: [Row] = []

        for count in Set([1] + shardCounts).sorted() {
            let engine = try Self.inProcessShards(documents, count: count, directory: scratch + "/in-process-\(count)")
            for callers in concurrency {
                let work = Self.schedule(queryVectors.count, callers: callers, passes: passes)
                _ = inProcess(engine, queryVectors, work: Self.schedule(min(queryVectors.count, 100), callers: callers, passes: 1))
                let before = ProcessCPU.seconds(of: [getpid()])
                let (times, seconds) = inProcess(engine, queryVectors, work: work)
                let cpu = ["engine": ProcessCPU.seconds(of: [getpid()]) - before]
                rows.append(Row(system: "in-process", shards: count, clients: callers, times: times, seconds: seconds, cpu: cpu))
                progress(rows.last!)
            }
        }

        let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let modes = transports.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !modes.isEmpty, modes.allSatisfy({ ["plain", "tls"].contains($0) }) else { throw ValidationError("--transports takes plain and/or tls") }
        for count in shardCounts {
            // Every transport's cluster of this shape (and the baseline binary's) is up at once, and
            // the timed passes alternate between them: a drift of the machine's speed (two cores,
            // shared with the callers) falls on both sides of a comparison alike.
            var targets: [Target] = []
            defer { for target in targets { _ = try? LocalClusterLauncher.down(data: target.data) } }
            for mode in modes {
                for (build, label) in [(binary, "")] + (baseline.map { [($0, "@baseline")] } ?? []) {
                    let data = scratch + "/cluster-\(count)-\(mode)" + (label.isEmpty ? "" : "-baseline")
                    // A fixed bound on searches in progress: the bench measures each number of callers, which an adaptive one would refuse in part.
                    var launcher = LocalClusterLauncher(shards: count, data: data, binary: build)
                    (launcher.vectors, launcher.searchConcurrency, launcher.secure) = (docs, "1024", mode == "tls")
                    let local = try launcher.up()
                    do {
                        targets.append(try Target(local: local, data: data, label: label))
                    } catch {
                        _ = try? LocalClusterLauncher.down(data: data)
                        throw error
                    }
                }
            }
            rows += try await clusterRows(count, targets: targets, queries: queryVectors, concurrency: concurrency)
            for target in targets { await target.client.close() }
        }
        print(report(rows, documents: documents.count, queries: queryVectors.count))
    }

    /// A running cluster (`local up`) and what the bench measures it with.
    struct Target {
        let local: LocalCluster
        let data: String
        /// "" for plaintext, "+tls" for `local up --secure`; then "@baseline" for the `--baseline` binary's cluster.
        let suffix: String
        /// The processes whose CPU each row counts, by role (client, coordinator, shards).
        let roles: [String: [Int32]]
        /// A caller as a client would be: a read key (over TLS when the cluster speaks it).
        let client: ClusterClient

        init(local: LocalCluster, data: String, label: String) throws {
            self.local = local
            self.data = data
            suffix = (local.security == nil ? "" : "+tls") + label
            roles = [
                "client": [getpid()],
                "coordinator": local.processes.filter { $0.name == "coordinator" }.map(\.pid),
                "shards": local.processes.filter { $0.name != "coordinator" }.map(\.pid),
            ]
            client = try local.client(key: .read)
        }
    }

    /// The wire row of each cluster, then its cluster rows, their timed passes alternating
    /// between the clusters (all of one shape: one per transport, and per build with `--baseline`).
    func clusterRows(_ count: Int, targets: [Target], queries queryVectors: [[String: Float]], concurrency: [Int]) async throws -> [Row] {
        var rows = try await wireRows(count, targets: targets)
        rows.forEach(progress)
        for callers in concurrency {
            var measured = targets.map { Row(system: "cluster" + $0.suffix, shards: count, clients: callers, times: [], seconds: 0, cpu: [:]) }
            for target in targets {
                _ = try await remote(target.client, queryVectors, work: Self.schedule(min(queryVectors.count, 100), callers: callers, passes: 1))
            }
            for _ in 0..<passes {
                for (index, target) in targets.enumerated() {
                    try await measured[index].add(roles: target.roles) {
                        try await remote(target.client, queryVectors, work: Self.schedule(queryVectors.count, callers: callers, passes: 1)).0
                    }
                }
            }
            for row in measured { progress(row) }
            rows += measured
        }
        return rows
    }

    struct Row {
        var system: String
        var shards: Int
        var clients: Int
        var times: [Double]
        var seconds: Double
        /// CPU seconds used during the timed passes, by role (engine; client, coordinator, shards).
        var cpu: [String: Double]
        var qps: Double { Double(times.count) / seconds }
        /// CPU milliseconds per query of every process together.
        var cpuPerQuery: Double { cpu.values.reduce(0, +) * 1000 / Double(times.count) }
        var latency: LatencySummary { LatencySummary(times) }

        /// Adds one timed pass: the latencies `body` returns, its wall time, and the CPU the
        /// processes of `roles` used meanwhile.
        mutating func add(roles: [String: [Int32]], _ body: () async throws -> [Double]) async rethrows {
            let before = roles.mapValues(ProcessCPU.seconds(of:))
            let started = DispatchTime.now().uptimeNanoseconds
            times += try await body()
            seconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            cpu.merge(roles.mapValues(ProcessCPU.seconds(of:)).merging(before, uniquingKeysWith: -), uniquingKeysWith: +)
        }
    }

    /// Query indices per caller: caller c takes every `callers`-th query, `passes` times.
    static func schedule(_ queries: Int, callers: Int, passes: Int) -> [[Int]] {
        (0..<callers).map { caller in
            (0..<passes).flatMap { _ in stride(from: caller, to: queries, by: callers) }
        }
    }

    /// The documents split over `count` shards as `local up` splits them, built and opened in
    /// this process.
    static func inProcessShards(_ documents: [TokenVectorRecord], count: Int, directory: String) throws -> [Shard] {
        let (parts, scale) = ShardBuilder.partition(documents, count: count)
        return try parts.enumerated().map { index, part in
            let id = ShardPartitioner.shardID(index)
            try ShardBuilder.build(records: part, directory: directory + "/" + id, shardID: id, quantizationScale: scale)
            return try Shard(directory: directory + "/" + id)
        }
    }

    /// The engine alone: one shard searched, or several searched one after another on the
    /// caller's thread and merged as the coordinator merges them (no wire, no coordinator).
    static func search(_ shards: [Shard], _ query: [String: Float], k: Int) throws {
        guard shards.count > 1 else {
            _ = try shards[0].search(query, k: k).hits
            return
        }
        _ = ResultMerger.merge(try shards.enumerated().map { index, shard in
            let id = ShardPartitioner.shardID(index)
            return .init(shard: id, hits: try shard.search(query, k: k).hits, scale: shard.scoreScale(for: query))
        }, k: k)
    }

    func inProcess(_ shards: [Shard], _ queries: [[String: Float]], work: [[Int]]) -> ([Double], Double) {
        let times = Mutex<[Double]>([])
        let started = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: work.count) { caller in
            var mine: [Double] = []
            for index in work[caller] {
                let t = DispatchTime.now().uptimeNanoseconds
                try? Self.search(shards, queries[index], k: k)
                mine.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
            }
            times.withLock { $0 += mine }
        }
        return (times.withLock { $0 }, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    func remote(_ client: ClusterClient, _ queries: [[String: Float]], work: [[Int]]) async throws -> ([Double], Double) {
        let k = k
        let started = DispatchTime.now().uptimeNanoseconds
        let times = try await withThrowingTaskGroup(of: [Double].self) { group in
            for indices in work {
                group.addTask {
                    var mine: [Double] = []
                    for index in indices {
                        var request = Sparrow_V1_QueryRequest()
                        request.vector = .init(queries[index])
                        request.k = UInt32(k)
                        let t = DispatchTime.now().uptimeNanoseconds
                        let response = try await client.search(request, timeout: .seconds(30))
                        mine.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
                        guard response.coverage.shardsOk == response.coverage.shardsTotal else {
                            throw ValidationError("partial results during the benchmark: \(response.coverage)")
                        }
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        return (times, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    /// The wire alone: round trips of a Health call (no search) to one shard node of each
    /// cluster from one caller, the floor under each of the cluster's two hops (caller →
    /// coordinator → shards); 2,000 per cluster, in rounds of 200 alternating between them.
    func wireRows(_ count: Int, targets: [Target]) async throws -> [Row] {
        var probes: [(client: RPCClient, roles: [String: [Int32]])] = []
        for target in targets {
            let node = try ClusterMap.load(path: target.local.clusterFile).nodes[0]
            // As an operator: an admin certificate may ask a node's health.
            let security = try target.local.security.map {
                ClientSecurity(tls: try TLSIdentity(files: $0.files(PeerIdentity(role: .admin, id: "admin"))))
            } ?? .none
            probes.append((
                RPCClient(try Endpoint(parsing: node.address), security: security),
                ["client": target.roles["client"]!, "shards": target.local.processes.filter { $0.name == node.id }.map(\.pid)]
            ))
        }
        func health(_ client: RPCClient) async throws {
            let _: Sparrow_V1_HealthResponse = try await client.call(ShardMethod.health, Sparrow_V1_HealthRequest(), timeout: .seconds(30))
        }
        for probe in probes {
            for _ in 0..<100 { try await health(probe.client) }
        }
        var rows = targets.map { Row(system: "wire" + $0.suffix, shards: count, clients: 1, times: [], seconds: 0, cpu: [:]) }
        for _ in 0..<10 {
            for (index, probe) in probes.enumerated() {
                try await rows[index].add(roles: probe.roles) {
                    var times: [Double] = []
                    for _ in 0..<200 {
                        let t = DispatchTime.now().uptimeNanoseconds
                        try await health(probe.client)
                        times.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
                    }
                    return times
                }
            }
        }
        for probe in probes { await probe.client.close() }
        return rows
    }

    func progress(_ row: Row) {
        FileHandle.standardError.write(Data("bench cluster: \(row.system) shards=\(row.shards) clients=\(row.clients) p50=\(row.latency.p50) ms p99=\(row.latency.p99) ms qps=\(String(format: "%.0f", row.qps))\n".utf8))
    }

    func report(_ rows: [Row], documents: Int, queries: Int) -> String {
        let lines = rows.map { row in
            let cpu = row.cpu.sorted { $0.key < $1.key }
                .map { "\"\($0.key)\": \(String(format: "%.3f", $0.value * 1000 / Double(row.times.count)))" }
            return "{\"system\": \"\(row.system)\", \"shards\": \(row.shards), \"clients\": \(row.clients), \"p50_ms\": \(row.latency.p50), \"p99_ms\": \(row.latency.p99), \"qps\": \(String(format: "%.1f", row.qps)), \"cpu_ms_per_query\": {\(cpu.joined(separator: ", "))}}"
        }
        let engine = Dictionary(uniqueKeysWithValues: rows.filter { $0.system == "in-process" }.map { ("\($0.shards)x\($0.clients)", $0) })
        let comparisons = rows.filter { $0.system == "cluster" }.compactMap { row -> String? in
            guard let whole = engine["1x\(row.clients)"], let split = engine["\(row.shards)x\(row.clients)"] else { return nil }
            func overhead(_ base: Row) -> String { String(format: "%.4f", Double(row.latency.p50)! - Double(base.latency.p50)!) }
            func ratio(_ a: Row, _ b: Row) -> String { String(format: "%.3f", a.qps / b.qps) }
            return "{\"shards\": \(row.shards), \"clients\": \(row.clients), \"p50_overhead_ms\": \(overhead(whole)), \"qps_vs_in_process\": \(ratio(row, whole)), "
                + "\"p50_overhead_vs_same_shards_ms\": \(overhead(split)), \"qps_vs_same_shards_in_process\": \(ratio(row, split)), "
                + "\"same_shards_in_process_qps_vs_in_process\": \(ratio(split, whole))}"
        }
        let plain = Dictionary(uniqueKeysWithValues: rows.filter { $0.system == "cluster" }.map { ("\($0.shards)x\($0.clients)", $0) })
        let tlsCost = rows.filter { $0.system == "cluster+tls" }.compactMap { row -> String? in
            guard let base = plain["\(row.shards)x\(row.clients)"] else { return nil }
            return "{\"shards\": \(row.shards), \"clients\": \(row.clients), "
                + String(format: "\"cpu_ms_per_query_plain\": %.3f, \"cpu_ms_per_query_tls\": %.3f, \"cpu_ratio\": %.3f, \"qps_ratio\": %.3f}",
                         base.cpuPerQuery, row.cpuPerQuery, row.cpuPerQuery / base.cpuPerQuery, row.qps / base.qps)
        }
        let current = Dictionary(uniqueKeysWithValues: rows.map { ("\($0.system) \($0.shards)x\($0.clients)", $0) })
        let baselineCost = rows.filter { $0.system.hasSuffix("@baseline") }.compactMap { old -> String? in
            let system = String(old.system.dropLast("@baseline".count))
            guard let new = current["\(system) \(old.shards)x\(old.clients)"] else { return nil }
            let roles = new.cpu.keys.sorted().map { role in
                String(format: "\"%@\": [%.3f, %.3f]", role, (old.cpu[role] ?? 0) * 1000 / Double(old.times.count), new.cpu[role]! * 1000 / Double(new.times.count))
            }
            return "{\"system\": \"\(system)\", \"shards\": \(old.shards), \"clients\": \(old.clients), \"cpu_ms_per_query_baseline_new\": {\(roles.joined(separator: ", "))}, "
                + String(format: "\"cpu_ratio\": %.3f, \"qps_ratio\": %.3f, ", new.cpuPerQuery / old.cpuPerQuery, new.qps / old.qps)
                + "\"p50_ms_baseline_new\": [\(old.latency.p50), \(new.latency.p50)]}"
        }
        return """
            {"docs": \(documents), "queries": \(queries), "k": \(k), "passes": \(passes), "cores": \(ProcessInfo.processInfo.activeProcessorCount),
             "rows": [
              \(lines.joined(separator: ",\n  "))
             ],
             "cluster_vs_in_process": [
              \(comparisons.joined(separator: ",\n  "))
             ],
             "tls_cost": [
              \(tlsCost.joined(separator: ",\n  "))
             ],
             "baseline_cost": [
              \(baselineCost.joined(separator: ",\n  "))
             ]}
            """
    }

    static func integers(_ text: String, _ option: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else { throw ValidationError("\(option) takes positive integers separated by commas") }
        return values.map { $0! }
    }
}

/// CPU time of processes, from /proc (Linux).
enum ProcessCPU {
    /// User + system CPU seconds used so far by `pids` together (0 for one that is gone).
    static func seconds(of pids: [Int32]) -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return pids.reduce(0) { total, pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let end = stat.lastIndex(of: ")") else { return total }
            // Fields after the command name: state is field 3; utime and stime are 14 and 15.
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return total }
            return total + (user + system) / ticks
        }
    }
}
