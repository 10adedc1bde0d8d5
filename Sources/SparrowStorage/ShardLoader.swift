import Foundation
import SparrowCore

/// Reads a shard's database into the in-memory `Shard.State`, verifying every record.
/// Any inconsistency is a `StorageError.corrupt` naming the key.
struct ShardLoader {
    let database: RocksDatabase

    func corrupt(_ key: [UInt8], _ reason: String) -> StorageError {
        .corrupt(path: database.path, key: ShardKeys.describe(key), reason: reason)
    }

    func load() throws -> Shard.State {
        guard let manifestBytes = try database.get(ShardKeys.manifest) else {
            throw StorageError.manifest(path: database.path, reason: "missing: the shard's bulk load did not complete")
        }
        let manifest = try ShardManifest.decode(manifestBytes, path: database.path)
        let quantizer = WeightQuantizer(scale: manifest.quantizationScale)
        var termOf: [String: UInt32] = [:]
        var tokens: [UInt32: String] = [:]
        try database.scan(prefix: ShardKeys.prefix("W")) { key, value in
            guard value.count == 4 else { throw corrupt(key, "term id has \(value.count) bytes") }
            let token = String(decoding: key.dropFirst(), as: UTF8.self)
            let term = ShardKeys.number([0] + value, at: 1)
            termOf[token] = term
            tokens[term] = token
            return true
        }
        let main = try loadBlocks(manifest: manifest, quantizer: quantizer)
        var deltaPostings: [UInt32: [(doc: UInt32, code: UInt8)]] = [:]
        try database.scan(prefix: ShardKeys.prefix("D")) { key, value in
            guard key.count == 9, value.count == 1, value[0] > 0 else { throw corrupt(key, "malformed online posting") }
            deltaPostings[ShardKeys.number(key, at: 1), default: []].append((ShardKeys.number(key, at: 5), value[0]))
            return true
        }
        var externalIDs: [UInt32: String] = [:]
        try database.scan(prefix: ShardKeys.prefix("I")) { key, value in
            guard let record = try? JSONDecoder().decode(DocumentRecord.self, from: Data(value)) else {
                throw corrupt(key, "document record is not valid JSON")
            }
            externalIDs[ShardKeys.number(key, at: 1)] = record.id
            return true
        }
        var live = DocumentFilter(count: Int(manifest.nextDocument), allowed: false)
        for doc in externalIDs.keys { live.insert(doc) }
        try database.scan(prefix: ShardKeys.prefix("X")) { key, _ in
            live.remove(ShardKeys.number(key, at: 1))
            return true
        }
        return Shard.State(
            manifest: manifest, quantizer: quantizer, termOf: termOf, tokens: tokens, main: main,
            forward: manifest.approximate == nil ? nil : ForwardIndex(main),
            delta: Self.index(deltaPostings, documentCount: Int(manifest.nextDocument), quantizer: quantizer),
            deltaPostings: deltaPostings, externalIDs: externalIDs, live: live)
    }

    /// Decodes every posting block, checking it against its term header and the manifest.
    private func loadBlocks(manifest: ShardManifest, quantizer: WeightQuantizer) throws -> InvertedIndex {
        var headers: [UInt32: TermHeader] = [:]
        try database.scan(prefix: ShardKeys.prefix("T")) { key, value in
            do {
                headers[ShardKeys.number(key, at: 1)] = try TermHeader.decode(value)
            } catch let error as CorruptData {
                throw corrupt(key, error.reason)
            }
            return true
        }
        var lists: [UInt32: PostingList] = [:]
        var currentTerm: UInt32?
        var termBlocks: [[UInt8]] = []
        var checksumInput: [UInt8] = []
        func finishTerm() throws {
            guard let term = currentTerm else { return }
            guard let header = headers[term] else { throw corrupt(ShardKeys.key("T", term), "no term header for its \(termBlocks.count) blocks") }
            let list: PostingList
            do {
                list = try PostingBlockCodec.decodeTerm(termBlocks, header: header)
            } catch let error as CorruptData {
                throw corrupt(ShardKeys.key("P", term), error.reason)
            }
            if let last = list.blockLastDoc.max(), last >= manifest.nextDocument {
                throw corrupt(ShardKeys.key("P", term), "document id \(last) beyond the manifest's \(manifest.nextDocument)")
            }
            lists[term] = list
            termBlocks.removeAll(keepingCapacity: true)
        }
        try database.scan(prefix: ShardKeys.prefix("P")) { key, value in
            guard key.count == 9 else { throw corrupt(key, "malformed posting key") }
            let term = ShardKeys.number(key, at: 1)
            if term != currentTerm {
                try finishTerm()
                currentTerm = term
            }
            guard ShardKeys.number(key, at: 5) == termBlocks.count else { throw corrupt(key, "expected block \(termBlocks.count)") }
            termBlocks.append(value)
            checksumInput.append(contentsOf: value.suffix(4))
            return true
        }
        try finishTerm()
        guard lists.count == headers.count else {
            throw StorageError.corrupt(path: database.path, key: "T/*", reason: "\(headers.count) term headers but \(lists.count) posting lists")
        }
        guard CRC32C.checksum(checksumInput) == manifest.postingsChecksum else {
            throw StorageError.corrupt(path: database.path, key: "P/*", reason: "posting blocks do not match the manifest checksum (blocks missing or replaced)")
        }
        return InvertedIndex(lists: lists, documentCount: Int(manifest.nextDocument), quantizer: quantizer)
    }

    /// An index over online postings (ascending doc ids per term).
    static func index(_ postings: [UInt32: [(doc: UInt32, code: UInt8)]], documentCount: Int, quantizer: WeightQuantizer) -> InvertedIndex {
        let lists = postings.mapValues { entries in
            let sorted = entries.sorted { $0.doc < $1.doc }
            return PostingList(docs: sorted.map(\.doc), weights: sorted.map(\.code))
        }
        return InvertedIndex(lists: lists, documentCount: documentCount, quantizer: quantizer)
    }
}
