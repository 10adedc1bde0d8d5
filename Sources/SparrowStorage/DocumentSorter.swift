import Foundation
import SparrowCore

/// Sorts a shard's documents by id (UTF-8 bytes) in bounded memory: documents are held until
/// about `budget` bytes, then sorted and spilled to a run file; `sorted()` merges the runs.
public final class DocumentSorter {
    private var held: [(key: [UInt8], document: EncodedDocument)] = []
    private var heldBytes = 0
    private let budget: Int
    private let scratch: String
    private var runs: [String] = []

    /// `scratch`: a directory for this sorter's runs alone (created when first needed).
    public init(budget: Int, scratch: String) {
        self.budget = max(1, budget)
        self.scratch = scratch
    }

    public func add(_ document: EncodedDocument) throws {
        let key = Array(document.id.utf8)
        heldBytes += 96 + 2 * key.count + 8 * document.vector.count + (document.fields?.reduce(0) { $0 + 64 + $1.key.utf8.count + $1.value.utf8.count } ?? 0)
        held.append((key, document))
        if heldBytes >= budget { try spill() }
    }

    private func spill() throws {
        var next = sortHeld().makeIterator()
        try writeRun { next.next()?.document }
        held = []
        heldBytes = 0
        // At `RecordFile.mergeWidth` runs they become one: a merge's open files and buffers stay bounded.
        if runs.count >= RecordFile.mergeWidth {
            let merge = try Merge(memory: [], runs: runs)
            runs = []
            try writeRun(merge.next)
        }
    }

    /// Writes the documents `next` gives (in id order, nil at the end) as a new run.
    private func writeRun(_ next: () throws -> EncodedDocument?) throws {
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let writer = try RecordFile.Writer(path: (scratch as NSString).appendingPathComponent("run-\(UUID().uuidString)"))
        while let document = try next() { try writer.append(document) }
        try writer.commit()
        runs.append(writer.path)
    }

    private func sortHeld() -> [(key: [UInt8], document: EncodedDocument)] {
        held.sort { $0.key.lexicographicallyPrecedes($1.key) }
        return held
    }

    /// The documents in id order; run files are removed as the merge ends.
    public func sorted() throws -> Merge {
        let memory = sortHeld()
        held = []
        return try Merge(memory: memory, runs: runs)
    }

    /// The k-way merge of the in-memory part and the runs.
    public final class Merge {
        private var memory: [(key: [UInt8], document: EncodedDocument)]
        private var memoryIndex = 0
        private let readers: [RecordFile.Reader]
        private var heads: [(key: [UInt8], document: EncodedDocument)?]
        private let runs: [String]

        init(memory: [(key: [UInt8], document: EncodedDocument)], runs: [String]) throws {
            self.memory = memory
            self.runs = runs
            readers = try runs.map(RecordFile.Reader.init(path:))
            heads = []
            for reader in readers { heads.append(try Self.read(reader)) }
        }

        deinit { for path in runs { unlink(path) } }

        private static func read(_ reader: RecordFile.Reader) throws -> (key: [UInt8], document: EncodedDocument)? {
            guard let record = try reader.next() else { return nil }
            let document = try EncodedDocument(record: record)
            return (Array(document.id.utf8), document)
        }

        public func next() throws -> EncodedDocument? {
            var best = -1
            var bestKey: [UInt8]?
            if memoryIndex < memory.count { bestKey = memory[memoryIndex].key }
            for (index, head) in heads.enumerated() {
                guard let head else { continue }
                if bestKey == nil || head.key.lexicographicallyPrecedes(bestKey!) {
                    best = index
                    bestKey = head.key
                }
            }
            if best >= 0 {
                let document = heads[best]!.document
                heads[best] = try Self.read(readers[best])
                return document
            }
            guard memoryIndex < memory.count else { return nil }
            defer {
                memory[memoryIndex].document = EncodedDocument(id: "", vector: SparseVector())   // release as we go
                memoryIndex += 1
            }
            return memory[memoryIndex].document
        }
    }
}
