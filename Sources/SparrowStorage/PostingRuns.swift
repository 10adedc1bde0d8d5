import Foundation
import SparrowCore

/// A shard's postings as its documents arrive in id order, in bounded memory: lists grow per
/// term until `budget` postings are held, then go to a run file (terms ascending); at the end
/// each term's runs are concatenated, which keeps its documents ascending since every run
/// holds later documents than the one before.
///
/// A run record: term (u32 LE), posting count (u32 LE), the documents (u32 LE each), the codes.
struct PostingRuns {
    private var docs: [[UInt32]]
    private var codes: [[UInt8]]
    private var held = 0
    private let budget: Int
    private let scratch: String
    private(set) var runs: [String] = []

    init(terms: Int, budget: Int, scratch: String) {
        docs = Array(repeating: [], count: terms)
        codes = Array(repeating: [], count: terms)
        self.budget = max(1, budget)
        self.scratch = scratch
    }

    /// Adds document `doc`'s postings; `doc` is above every document added before.
    mutating func add(doc: UInt32, terms: [UInt32], codes: [UInt8]) throws {
        for (term, code) in zip(terms, codes) {
            docs[Int(term)].append(doc)
            self.codes[Int(term)].append(code)
        }
        held += terms.count
        if held >= budget { try spill() }
    }

    private mutating func spill() throws {
        let writer = try nextRun()
        for term in docs.indices where !docs[term].isEmpty {
            try writer.append(Self.record(term: UInt32(term), docs: docs[term], codes: codes[term]))
            docs[term] = []
            codes[term] = []
        }
        try finishRun(writer)
        held = 0
    }

    private func nextRun() throws -> RecordFile.Writer {
        try RecordFile.Writer(path: (scratch as NSString).appendingPathComponent("postings-\(UUID().uuidString)"))
    }

    /// Adds a written run; at `RecordFile.mergeWidth` runs they become one (open files and read
    /// buffers stay bounded whatever the corpus).
    private mutating func finishRun(_ writer: RecordFile.Writer) throws {
        try writer.commit()
        runs.append(writer.path)
        guard runs.count >= RecordFile.mergeWidth else { return }
        let merged = try nextRun()
        try Self.merge(runs, terms: docs.count) { term, docs, codes in try merged.append(Self.record(term: term, docs: docs, codes: codes)) }
        try merged.commit()
        runs = [merged.path]
    }

    private static func record(term: UInt32, docs: [UInt32], codes: [UInt8]) -> [UInt8] {
        var record: [UInt8] = []
        record.reserveCapacity(8 + docs.count * 5)
        RecordFile.appendLittleEndian(term, to: &record)
        RecordFile.appendLittleEndian(UInt32(docs.count), to: &record)
        for doc in docs { RecordFile.appendLittleEndian(doc, to: &record) }
        record.append(contentsOf: codes)
        return record
    }

    /// Calls `list` once per term with postings, terms ascending, with its whole list.
    mutating func finish(_ list: (_ term: UInt32, _ docs: [UInt32], _ codes: [UInt8]) throws -> Void) throws {
        guard !runs.isEmpty else {
            for term in docs.indices where !docs[term].isEmpty { try list(UInt32(term), docs[term], codes[term]) }
            return
        }
        if held > 0 { try spill() }
        try Self.merge(runs, terms: docs.count, list)
    }

    /// Each term's lists from `runs` (in order) concatenated; the runs are removed after.
    private static func merge(_ runs: [String], terms: Int, _ list: (_ term: UInt32, _ docs: [UInt32], _ codes: [UInt8]) throws -> Void) throws {
        let readers = try runs.map(RecordFile.Reader.init(path:))
        var heads = try readers.map { try $0.next().map(Array.init) }
        for term in 0..<terms {
            var termDocs: [UInt32] = []
            var termCodes: [UInt8] = []
            for (index, reader) in readers.enumerated() {
                guard let head = heads[index], RecordFile.littleEndian(head[0..<4]) == UInt32(term) else { continue }
                let count = Int(RecordFile.littleEndian(head[4..<8]))
                guard head.count == 8 + 5 * count else { throw CorruptData("\(reader.path): a posting run record of the wrong size") }
                for offset in stride(from: 8, to: 8 + 4 * count, by: 4) { termDocs.append(RecordFile.littleEndian(head[offset..<(offset + 4)])) }
                termCodes.append(contentsOf: head[(8 + 4 * count)...])
                heads[index] = try reader.next().map(Array.init)
            }
            if !termDocs.isEmpty { try list(UInt32(term), termDocs, termCodes) }
        }
        for path in runs { unlink(path) }
    }
}
