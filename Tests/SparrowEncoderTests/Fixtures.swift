import Foundation
import Testing

/// Paths into `../shared` (beside the checkout), or `$SPARROW_SHARED`.
enum Shared {
    static let root: String = {
        if let path = ProcessInfo.processInfo.environment["SPARROW_SHARED"] { return path }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared").path
    }()

    static func path(_ relative: String) -> String { (root as NSString).appendingPathComponent(relative) }

    static var spladeTiny: String { path("models/splade-tiny") }
    static var tinyBert: String { path("fixtures/models/tiny-bert-random") }
    static var tinyDistilBert: String { path("fixtures/models/tiny-distilbert-random") }

    /// Reads a JSONL fixture as dictionaries.
    static func jsonl(_ relative: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path(relative), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }
}

/// A fresh temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("sparrow-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// One pooled-vector fixture record.
struct PooledFixture {
    let text: String
    let inputIDs: [Int32]
    /// `nnz`, `l1` and `top` (token id → weight) per activation name.
    let vectors: [String: (nnz: Int, l1: Double, top: [Int: Float])]

    static func load(_ relative: String) throws -> [PooledFixture] {
        try Shared.jsonl(relative).map { record in
            var vectors: [String: (nnz: Int, l1: Double, top: [Int: Float])] = [:]
            for name in ["log1p_relu", "log1p_log1p_relu"] {
                let v = try #require(record[name] as? [String: Any])
                let top = try #require(v["top"] as? [String: Any])
                vectors[name] = (
                    nnz: try #require(v["nnz"] as? Int),
                    l1: try #require((v["l1"] as? NSNumber)?.doubleValue),
                    top: Dictionary(uniqueKeysWithValues: top.map { (Int($0.key)!, ($0.value as! NSNumber).floatValue) })
                )
            }
            return PooledFixture(
                text: try #require(record["text"] as? String),
                inputIDs: try #require(record["input_ids"] as? [Int]).map(Int32.init),
                vectors: vectors
            )
        }
    }
}
