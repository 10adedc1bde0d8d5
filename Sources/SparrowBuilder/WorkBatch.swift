import SparrowCore
import SparrowEncoder
import SparrowStorage

/// One encoded work batch (`work/batches/batch-NNNNNN.bin`), a `RecordFile`: first the document
/// frequencies of the tokens the encoder read (varint document count, varint entry count, then
/// per token its id gap and its frequency as varints), then each document (`EncodedDocument`,
/// terms = vocabulary ids). Corpus IDF is the sum of the batches' counts: no second pass.
enum WorkBatch {
    static func write(path: String, documents: [EncodedDocument], frequencies: IDFCounter) throws {
        let writer = try RecordFile.Writer(path: path)
        var header: [UInt8] = []
        ByteCodec.appendVarint(UInt32(frequencies.documents), to: &header)
        let entries = frequencies.documentFrequency.enumerated().filter { $0.element > 0 }
        ByteCodec.appendVarint(UInt32(entries.count), to: &header)
        var previous = 0
        for (token, count) in entries {
            ByteCodec.appendVarint(UInt32(token - previous), to: &header)
            ByteCodec.appendVarint(UInt32(count), to: &header)
            previous = token
        }
        try writer.append(header)
        for document in documents { try writer.append(document) }
        try writer.commit()
    }

    /// Reads a batch: adds its frequencies to `frequencies` and hands over each document.
    static func read(path: String, vocabularySize: Int, frequencies: inout IDFCounter, document: (EncodedDocument) throws -> Void) throws {
        let reader = try RecordFile.Reader(path: path)
        do {
            guard let header = try reader.next() else { throw CorruptData("no header") }
            var bytes = ByteReader(Array(header))
            let documents = Int(try bytes.varint())
            var counts = [Int](repeating: 0, count: vocabularySize)
            var token = 0
            for index in 0..<Int(try bytes.varint()) {
                let gap = Int(try bytes.varint())
                guard index == 0 || gap > 0 else { throw CorruptData("frequencies not ascending") }
                token += gap
                guard token < vocabularySize else { throw CorruptData("token \(token) is outside the vocabulary") }
                counts[token] = Int(try bytes.varint())
            }
            frequencies.add(documents: documents, frequencies: counts)
            var read = 0
            while let record = try reader.next() {
                try document(try EncodedDocument(record: record, termLimit: UInt32(vocabularySize)))
                read += 1
            }
            guard read == documents else { throw CorruptData("\(read) documents, the header says \(documents)") }
        } catch let error as CorruptData {
            throw BuilderError.files(path: path, reason: "damaged work batch (\(error)); remove it and run the build again")
        }
    }
}
