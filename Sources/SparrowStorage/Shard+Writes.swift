import Foundation
import SparrowCore

extension Shard {
    /// Inserts or replaces a document. Returns once the write is in the synced WAL; the next
    /// search sees it. A replaced version is masked at once and dropped by `compact()`.
    /// Weights above the shard's quantization range are clamped to its largest code.
    /// The write is logged with the next change sequence (see `changes(after:limit:)`).
    @discardableResult
    public func upsert(_ record: TokenVectorRecord) throws -> UInt32 {
        try writeLock.withLock { try upsertLocked(record, sequence: nil, write: 0) }
    }

    /// Upserts `records` in order as one write: refused whole, before any is applied, when
    /// `write` does not follow the log's tail. Returns the new tail.
    public func upsert(_ records: [TokenVectorRecord], as write: SequencedWrite?) throws -> ChangeTail {
        try writeLock.withLock {
            try check(write)
            for record in records { _ = try upsertLocked(record, sequence: nil, write: write?.id ?? 0) }
            return tail
        }
    }

    /// The upsert, with `writeLock` held; `sequence` given when replaying another copy's change.
    func upsertLocked(_ record: TokenVectorRecord, sequence: UInt64?, write: UInt64) throws -> UInt32 {
        var s = state
        let batch = WriteBatch()
        try log(.init(upsert: record, write: write), sequence: sequence, in: batch, state: &s)
        let doc = s.manifest.nextDocument
        if let old = try lookup(record.id) {
            try maskDocument(old, in: batch, state: &s)
        } else {
            s.manifest.liveDocuments += 1
        }
        var pairs: [(UInt32, Float)] = []
        for (token, weight) in record.vector where weight > 0 {
            let term: UInt32
            if let known = s.termOf[token] {
                term = known
            } else {
                term = UInt32(s.termOf.count)
                s.termOf[token] = term
                s.tokens[term] = token
                var value: [UInt8] = []
                ByteCodec.appendBigEndian(term, to: &value)
                batch.put(ShardKeys.key("W", token), value)
                batch.put(ShardKeys.key("V", term), Array(token.utf8))
            }
            pairs.append((term, weight))
        }
        let vector = SparseVector(pairs: pairs)
        let codes = vector.weights.map(s.quantizer.quantize)
        var docValue: [UInt8] = []
        ByteCodec.appendBigEndian(doc, to: &docValue)
        batch.put(ShardKeys.key("E", record.id), docValue)
        batch.put(ShardKeys.key("F", doc), ForwardVectorCodec.encode(terms: vector.terms, codes: codes))
        batch.put(ShardKeys.key("I", doc), Array(try JSONEncoder().encode(DocumentRecord(id: record.id, fields: record.fields))))
        for (field, value) in record.fields ?? [:] { batch.put(ShardKeys.fieldKey(field: field, value: value, doc: doc), []) }
        for (term, code) in zip(vector.terms, codes) {
            batch.put(ShardKeys.key("D", term, doc), [code])
            s.deltaPostings[term, default: []].append((doc, code))
        }
        s.manifest.nextDocument = doc + 1
        s.manifest.epoch += 1
        s.manifest.postings += vector.count
        batch.put(ShardKeys.manifest, try s.manifest.encoded())
        try database.write(batch, sync: true)
        s.externalIDs[doc] = record.id
        s.live.insert(doc)
        s.delta = ShardLoader.index(s.deltaPostings, documentCount: Int(doc + 1), quantizer: s.quantizer)
        s.main = InvertedIndex(lists: s.main.lists, documentCount: Int(doc + 1), quantizer: s.quantizer)
        state = s
        return doc
    }

    /// Deletes a document by external id; returns false when there was none. Durable on return;
    /// the document never appears in results from then on.
    @discardableResult
    public func delete(id: String) throws -> Bool {
        try writeLock.withLock { try deleteLocked(id: id, sequence: nil, write: 0) }
    }

    /// Deletes `ids` in order as one write, refused whole when `write` does not follow the
    /// log's tail. Returns how many were present, and the new tail.
    public func delete(ids: [String], as write: SequencedWrite?) throws -> (deleted: Int, tail: ChangeTail) {
        try writeLock.withLock {
            try check(write)
            let deleted = try ids.filter { try deleteLocked(id: $0, sequence: nil, write: write?.id ?? 0) }.count
            return (deleted, tail)
        }
    }

    /// A delete of an absent id is logged only when replayed (`sequence` given), so that the
    /// copy's sequence keeps step with its source's.
    func deleteLocked(id: String, sequence: UInt64?, write: UInt64) throws -> Bool {
        var s = state
        let doc = try lookup(id)
        guard doc != nil || sequence != nil else { return false }
        let batch = WriteBatch()
        try log(.init(delete: id, write: write), sequence: sequence, in: batch, state: &s)
        if let doc {
            try maskDocument(doc, in: batch, state: &s)
            batch.delete(ShardKeys.key("E", id))
            s.manifest.liveDocuments -= 1
        }
        s.manifest.epoch += 1
        batch.put(ShardKeys.manifest, try s.manifest.encoded())
        try database.write(batch, sync: true)
        state = s
        return doc != nil
    }

    /// Rewrites the posting blocks from the forward index of live documents, dropping deleted
    /// documents and folding online postings into blocks; then compacts RocksDB's files.
    /// The change log keeps the changes after `keepingChangesAfter` (nil: none), for a move's
    /// copy or a replica that missed writes to replay.
    public func compact(keepingChangesAfter keep: UInt64? = nil) throws {
        try writeLock.withLock {
            var s = state
            let batch = WriteBatch()
            var postings: [UInt32: [(doc: UInt32, code: UInt8)]] = [:]
            try database.scan(prefix: ShardKeys.prefix("F")) { key, value in
                let doc = ShardKeys.number(key, at: 1)
                guard s.live.contains(doc) else {
                    batch.delete(key)
                    batch.delete(ShardKeys.key("I", doc))
                    batch.delete(ShardKeys.key("X", doc))
                    return true
                }
                let forward: (terms: [UInt32], codes: [UInt8])
                do {
                    forward = try ForwardVectorCodec.decode(value)
                } catch let error as CorruptData {
                    throw StorageError.corrupt(path: database.path, key: ShardKeys.describe(key), reason: error.reason)
                }
                for (term, code) in zip(forward.terms, forward.codes) { postings[term, default: []].append((doc, code)) }
                return true
            }
            for tag: Character in ["P", "T", "D"] {
                try database.scan(prefix: ShardKeys.prefix(tag)) { key, _ in
                    batch.delete(key)
                    return true
                }
            }
            let logStart = max(s.manifest.logStart ?? 0, min(keep ?? .max, s.manifest.lastChange ?? 0))
            try database.scan(prefix: ShardKeys.prefix("L")) { key, _ in
                guard ShardKeys.sequence(key) <= logStart else { return false }
                batch.delete(key)
                return true
            }
            var checksumInput: [UInt8] = []
            var total = 0
            for term in postings.keys.sorted() {
                let list = postings[term]!
                total += list.count
                let (encoded, header) = PostingBlockCodec.encodeTerm(docs: list.map(\.doc), codes: list.map(\.code))
                for (number, block) in encoded.enumerated() {
                    batch.put(ShardKeys.key("P", term, UInt32(number)), block)
                    checksumInput.append(contentsOf: block.suffix(4))
                }
                batch.put(ShardKeys.key("T", term), header.encoded())
            }
            s.manifest.postings = total
            s.manifest.postingsChecksum = CRC32C.checksum(checksumInput)
            s.manifest.logStart = logStart
            s.manifest.epoch += 1
            batch.put(ShardKeys.manifest, try s.manifest.encoded())
            try database.write(batch, sync: true)
            database.compactAll()
            state = try ShardLoader(database: database).load()
        }
    }

    /// The internal id of a live external id.
    func lookup(_ id: String) throws -> UInt32? {
        guard let value = try database.get(ShardKeys.key("E", id)) else { return nil }
        guard value.count == 4 else {
            throw StorageError.corrupt(path: database.path, key: ShardKeys.describe(ShardKeys.key("E", id)), reason: "doc id has \(value.count) bytes")
        }
        return ShardKeys.number([0] + value, at: 1)
    }

    /// Marks `doc` deleted and removes its stored-field index entries.
    private func maskDocument(_ doc: UInt32, in batch: WriteBatch, state s: inout State) throws {
        batch.put(ShardKeys.key("X", doc), [])
        if let bytes = try database.get(ShardKeys.key("I", doc)),
           let record = try? JSONDecoder().decode(DocumentRecord.self, from: Data(bytes)) {
            for (field, value) in record.fields ?? [:] { batch.delete(ShardKeys.fieldKey(field: field, value: value, doc: doc)) }
        }
        s.live.remove(doc)
    }
}
