import SparrowCore

/// A document as a build carries it between stages: its id, its vector over a build-wide token
/// table (`TokenTable`: vocabulary ids for a model, first-seen order for a vectors file) and its
/// stored fields. Work batches and spilled runs hold it in the binary form below, never as text.
///
/// Binary form (`append(to:)`): varint id length, id bytes; varint field count, then each field's
/// name and value as varint length + bytes, names ascending; varint term count, the terms as
/// varint gaps, then each weight as its 4 little-endian IEEE-754 bytes.
public struct EncodedDocument: Sendable, Equatable {
    public var id: String
    public var vector: SparseVector
    public var fields: [String: String]?

    public init(id: String, vector: SparseVector, fields: [String: String]? = nil) {
        self.id = id
        self.vector = vector
        self.fields = fields
    }

    public func append(to out: inout [UInt8]) {
        func appendText(_ text: String) {
            ByteCodec.appendVarint(UInt32(text.utf8.count), to: &out)
            out.append(contentsOf: text.utf8)
        }
        appendText(id)
        let fields = (fields ?? [:]).sorted { $0.key < $1.key }
        ByteCodec.appendVarint(UInt32(fields.count), to: &out)
        for (name, value) in fields {
            appendText(name)
            appendText(value)
        }
        ByteCodec.appendVarint(UInt32(vector.count), to: &out)
        var previous: UInt32 = 0
        for term in vector.terms {
            ByteCodec.appendVarint(term - previous, to: &out)
            previous = term
        }
        for weight in vector.weights {
            let bits = weight.bitPattern
            for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift))) }
        }
    }

    /// Reads one document written by `append(to:)`; terms must be below `termLimit`.
    public static func read(from reader: inout ByteReader, termLimit: UInt32 = .max) throws -> EncodedDocument {
        func text() throws -> String {
            String(decoding: try reader.bytes(Int(try reader.varint())), as: UTF8.self)
        }
        let id = try text()
        let fieldCount = Int(try reader.varint())
        var fields: [String: String]?
        if fieldCount > 0 {
            var values: [String: String] = [:]
            for _ in 0..<fieldCount {
                let name = try text()
                values[name] = try text()
            }
            fields = values
        }
        let count = Int(try reader.varint())
        var terms: [UInt32] = []
        terms.reserveCapacity(min(count, 1 << 16))
        var term: UInt32 = 0
        for index in 0..<count {
            let gap = try reader.varint()
            guard index == 0 || gap > 0 else { throw CorruptData("terms of '\(id)' not ascending") }
            let (next, overflow) = term.addingReportingOverflow(gap)
            guard !overflow, next < termLimit else { throw CorruptData("term id of '\(id)' out of range") }
            term = next
            terms.append(term)
        }
        let raw = try reader.bytes(4 * count)
        var weights: [Float] = []
        weights.reserveCapacity(count)
        var index = raw.startIndex
        for _ in 0..<count {
            var bits: UInt32 = 0
            for shift in 0..<4 { bits |= UInt32(raw[index + shift]) << UInt32(8 * shift) }
            index += 4
            let weight = Float(bitPattern: bits)
            guard weight > 0, weight.isFinite else { throw CorruptData("weight of '\(id)' is not a positive number") }
            weights.append(weight)
        }
        return EncodedDocument(id: id, vector: SparseVector(sortedTerms: terms, weights: weights), fields: fields)
    }
}

extension EncodedDocument {
    /// The document a record of a work batch or a sorted run holds.
    public init(record: ArraySlice<UInt8>, termLimit: UInt32 = .max) throws {
        var reader = ByteReader(Array(record))
        self = try Self.read(from: &reader, termLimit: termLimit)
    }
}

extension RecordFile.Writer {
    /// Appends `document` as one record.
    public func append(_ document: EncodedDocument) throws {
        var bytes: [UInt8] = []
        document.append(to: &bytes)
        try append(bytes)
    }
}
