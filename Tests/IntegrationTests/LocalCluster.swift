import Foundation
import SparrowCoordinator
import SparrowStorage
import SparrowWire

/// A `sparrow local up` cluster in a scratch directory, stopped (and removed) by `down()`.
final class LocalTestCluster {
    let data: String
    let map: ClusterMap
    let coordinator: Endpoint
    /// The coordinator's protobuf/TCP address, host:port (for `--coordinator`).
    let rpcAddress: String
    let pids: [String: Int32]

    static var binary: String { BulkIngestCrashTests.binary }

    /// Starts `shards` shard processes (× `replicas`) loaded with `records`.
    convenience init(records: [TokenVectorRecord], shards: Int, replicas: Int = 1) throws {
        let data = NSTemporaryDirectory() + "sparrow-cluster-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let vectors = data + "/vectors.jsonl"
        try records.map(\.jsonLine).joined().write(toFile: vectors, atomically: false, encoding: .utf8)
        try self.init(data: data, shards: shards, ["--replicas", "\(replicas)", "--vectors", vectors])
    }

    /// Starts `shards` shard processes with `local up … arguments` in `data` (a scratch directory by default).
    init(data: String = NSTemporaryDirectory() + "sparrow-cluster-\(UUID().uuidString)", shards: Int, _ arguments: [String], binary: String = binary) throws {
        self.data = data
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let output = try Self.run(executable: binary, ["local", "up", "--shards", "\(shards)", "--data", data + "/cluster"] + arguments)
        guard output.status == 0 else { throw TestFailure("local up failed: \(output.text)") }
        let local = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: data + "/cluster/local.json"))) as! [String: Any]
        rpcAddress = local["coordinatorRPC"] as! String
        coordinator = try Endpoint(parsing: rpcAddress)
        map = try ClusterMap.load(path: local["clusterFile"] as! String)
        var pids: [String: Int32] = [:]
        for process in local["processes"] as! [[String: Any]] { pids[process["name"] as! String] = (process["pid"] as! NSNumber).int32Value }
        self.pids = pids
    }

    func node(_ id: String) throws -> Endpoint { try Endpoint(parsing: map.address(of: id)!) }

    func down() {
        _ = try? Self.run(["local", "down", "--data", data + "/cluster"])
        try? FileManager.default.removeItem(atPath: data)
    }

    /// Runs a program (default: sparrow) to completion; its exit status and merged output.
    static func run(executable: String = binary, _ arguments: [String]) throws -> (status: Int32, text: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    /// Resident memory of a process, KiB.
    static func residentKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Deterministic pseudo-random numbers (splitmix64) for generated corpora and queries.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum GeneratedCorpus {
    /// Documents over tokens t0…t(vocabulary-1), common tokens more frequent; weights on a
    /// coarse grid so that equal scores (ties) occur.
    static func documents(_ count: Int, vocabulary: Int, seed: UInt64) -> [TokenVectorRecord] {
        var random = SplitMix(state: seed)
        return (0..<count).map { doc in
            var vector: [String: Float] = [:]
            for _ in 0..<Int.random(in: 3...25, using: &random) {
                let token = Int(Double(vocabulary) * pow(Double.random(in: 0..<1, using: &random), 2))
                vector["t\(token)"] = Float(Int.random(in: 1...12, using: &random)) / 4
            }
            return TokenVectorRecord(id: "doc-\(doc)", vector: vector)
        }
    }

    /// Queries of 1–12 tokens, some absent from every document.
    static func queries(_ count: Int, vocabulary: Int, seed: UInt64) -> [[String: Float]] {
        var random = SplitMix(state: seed)
        return (0..<count).map { _ in
            var query: [String: Float] = [:]
            for _ in 0..<Int.random(in: 1...12, using: &random) {
                query["t\(Int.random(in: 0..<(vocabulary + 20), using: &random))"] = Float(Int.random(in: 1...40, using: &random)) / 10
            }
            return query
        }
    }
}
