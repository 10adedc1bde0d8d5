import Foundation
import SparrowStorage
import Testing

/// `sparrow build --slice auto` as a Kubernetes Indexed Job and a Slurm job array run it: M
/// processes at once over one shared directory, told their slice only by the batch system's
/// variables, then `build merge` in place; the bundles are byte-identical to a single build.
@Suite(.serialized) struct BatchSystemBuildTests {
    static let slices = 3

    /// The build's files that must not depend on how it was run: `build.json` and each shard's
    /// manifest byte for byte, and every key and value of each shard's SST. (The SST files
    /// themselves differ between any two builds, sliced or not, in RocksDB's table properties
    /// only: `SstFileWriter` records a random session id and the host name, and 7.8 has no
    /// option to fix them.)
    static func files(_ out: String, scratch: String) throws -> [String: Data] {
        var files = ["build.json": try Data(contentsOf: URL(fileURLWithPath: out + "/build.json"))]
        for shard in try FileManager.default.contentsOfDirectory(atPath: out + "/shards") {
            files[shard + "/manifest.json"] = try Data(contentsOf: URL(fileURLWithPath: "\(out)/shards/\(shard)/manifest.json"))
            files[shard + "/shard.sst"] = try contents(ofSST: "\(out)/shards/\(shard)/shard.sst", scratch: scratch)
        }
        return files
    }

    /// Every key and value of an SST, read back by RocksDB (a copy ingested into a scratch database).
    static func contents(ofSST path: String, scratch: String) throws -> Data {
        let copy = scratch + "/\(UUID().uuidString).sst"
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        let database = try RocksDatabase(path: scratch + "/" + UUID().uuidString, createIfMissing: true)
        try database.ingest(files: [copy])
        var entries = Data()
        try database.scan(prefix: []) { key, value in
            for part in [key, value] {
                entries.append(contentsOf: withUnsafeBytes(of: UInt32(part.count).littleEndian, Array.init))
                entries.append(contentsOf: part)
            }
            return true
        }
        return entries
    }

    /// Starts `sparrow ARGUMENTS` once per environment, all at once, and waits for every one.
    static func together(_ arguments: [String], environments: [[String: String]]) throws -> [(status: Int32, output: String)] {
        let runs = try environments.map { environment in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: BuildLoadTests.release)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SLURM_") && !$0.key.hasPrefix("JOB_") }
                .merging(environment) { $1 }
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("sparrow-slice-\(UUID().uuidString).log")
            FileManager.default.createFile(atPath: output.path, contents: nil)
            let handle = try FileHandle(forWritingTo: output)
            (process.standardOutput, process.standardError) = (handle, handle)
            try process.run()
            return (process, output)
        }
        return runs.map { process, output in
            process.waitUntilExit()
            defer { try? FileManager.default.removeItem(at: output) }
            return (process.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
        }
    }

    @Test func slicesFromKubernetesAndSlurmVariablesMergeIntoTheSingleBuild() throws {
        let dir = BuildLoadTests.scratch + "/batch-systems"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let topics = ["cerebral white matter", "vitamin d and tuberculosis", "breast cancer prognosis", "nanoparticles target cells", "gene expression in yeast"]
        let corpus = (0..<160).map { #"{"_id": "doc\#($0)", "text": "\#(topics[$0 % 5]) measured \#($0) times in cohort \#($0 % 7)"}"# }
        try corpus.joined(separator: "\n").write(toFile: dir + "/corpus.jsonl", atomically: false, encoding: .utf8)
        let build = ["build", "--corpus", dir + "/corpus.jsonl", "--model", BuildLoadTests.model, "--idf", BuildLoadTests.idf,
                     "--shards", "3", "--batch-documents", "10", "--threads", "1"]
        _ = try BuildLoadTests.succeed(build + ["--out", dir + "/single"])
        let scratch = dir + "/scratch"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let reference = try Self.files(dir + "/single", scratch: scratch)

        let kubernetes = (0..<Self.slices).map { ["JOB_COMPLETION_INDEX": "\($0)", "JOB_COMPLETIONS": "\(Self.slices)"] }
        // sbatch --array=1-3
        let slurm = (0..<Self.slices).map { ["SLURM_ARRAY_TASK_ID": "\($0 + 1)", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "\(Self.slices)"] }
        for (name, environments) in [("kubernetes", kubernetes), ("slurm", slurm)] {
            let out = dir + "/" + name
            for (slice, run) in try Self.together(build + ["--out", out, "--slice", "auto"], environments: environments).enumerated() {
                #expect(run.status == 0 && run.output.contains("slice \(slice)/\(Self.slices) encoded"), "\(name) slice \(slice): \(run.output)")
            }
            _ = try BuildLoadTests.succeed(["build", "merge", "--out", out, out])
            #expect(try Self.files(out, scratch: scratch) == reference, "\(name): the merged build differs from the single one")
        }
        let lost = try BuildLoadTests.sparrow(build + ["--out", dir + "/none", "--slice", "auto"])
        #expect(lost.status != 0 && lost.text.contains("neither a Kubernetes Indexed Job"), "\(lost.text)")
    }
}
