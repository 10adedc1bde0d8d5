import ArgumentParser
import Foundation
import SparrowClient
import SparrowStorage
import SparrowWire

struct WriteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write",
        abstract: "Upsert documents (a vectors file) or delete ids through the coordinator.",
        discussion: """
        Each id goes to its shard (the builder's partitioning) on every replica; a batch is acknowledged \
        once every replica has it in its synced log. A batch that is not acknowledged may be sent again.
        """
    )

    @Option(help: "Coordinator protobuf/TCP address, host:port.")
    var coordinator: String

    @OptionGroup var access: ClientSecurityOptions

    @Option(help: "Vectors file ({\"id\", \"vector\", \"fields\"?} JSONL, optionally .gz) to upsert.")
    var vectors: String?

    @Option(parsing: .upToNextOption, help: "Ids to delete.")
    var delete: [String] = []

    @Option(help: "Documents per call.")
    var batch = 256

    func validate() throws {
        guard vectors != nil || !delete.isEmpty else { throw ValidationError("give --vectors FILE and/or --delete ID…") }
        guard batch > 0 else { throw ValidationError("--batch must be at least 1") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            let client = try access.coordinator(coordinator)
            defer { Task { await client.close() } }
            let records = try vectors.map { try TokenVectorRecord.readAll(path: $0) } ?? []
            var (upserted, deleted) = (0, 0)
            for start in stride(from: 0, to: records.count, by: batch) {
                upserted += Int(try await client.write(upserts: Array(records[start..<min(start + batch, records.count)])).upserted)
            }
            if !delete.isEmpty {
                deleted = Int(try await client.write(deletes: delete).deleted)
            }
            print("upserted \(upserted), deleted \(deleted)")
        }
    }
}
