import Foundation
import SparrowCore
import SparrowIO
import SparrowStorage

/// The read stage's sink: sends each document to its shard's sorter (`ShardPartitioner`'s
/// stable hash of the id) and keeps what the write stage needs from the whole corpus: the
/// largest weight (one quantization scale for every shard, so their integer scores compare
/// exactly), which tokens each shard uses, and a hash of the content for the build id.
struct Partitioner {
    private let sorters: [DocumentSorter]
    private var uses: [[Bool]]
    private var largest: Float?
    private var hash = FNV1a()
    private let vectors: AtomicOutputFile?
    private let tokenName: (UInt32) -> String
    private(set) var documents = 0

    /// `vectors`: also write every document to this vectors file (`--keep-vectors`), in input order.
    init(shards: Int, memoryBudget: Int, scratch: String, vectors: String?, tokenName: @escaping (UInt32) -> String) throws {
        sorters = (0..<shards).map { DocumentSorter(budget: memoryBudget / shards, scratch: (scratch as NSString).appendingPathComponent("sort-\($0)")) }
        uses = Array(repeating: [], count: shards)
        self.vectors = try vectors.map(AtomicOutputFile.init(path:))
        self.tokenName = tokenName
    }

    mutating func add(_ document: EncodedDocument) throws {
        let shard = ShardPartitioner.shard(of: document.id, count: sorters.count)
        for token in document.vector.terms {
            if Int(token) >= uses[shard].count { uses[shard] += repeatElement(false, count: Int(token) + 1 - uses[shard].count) }
            uses[shard][Int(token)] = true
        }
        if let top = document.vector.weights.max() { largest = max(largest ?? top, top) }
        hash.add(document.id)
        for (token, weight) in document.vector.entries {
            withUnsafeBytes(of: token.littleEndian) { hash.add($0) }
            withUnsafeBytes(of: weight.bitPattern.littleEndian) { hash.add($0) }
        }
        if let vectors {
            let name = tokenName
            try vectors.write(TokenVectorRecord.line(id: document.id, entries: document.vector.entries.lazy.map { (name($0.0), $0.1) }, fields: document.fields))
        }
        try sorters[shard].add(document)
        documents += 1
    }

    /// Ends the read: the vectors file goes into place.
    func finish() throws -> Partitioner {
        try vectors?.commit()
        return self
    }

    var quantizer: WeightQuantizer { WeightQuantizer(maxWeight: largest ?? 1) }

    /// The build id: the documents' ids and weights in input order, the token names and `settings`.
    func buildID(_ settings: String, tokens: [String]) -> String {
        var hash = self.hash
        for token in tokens { hash.add(token) }
        hash.add(settings)
        return hash.hex
    }

    /// The build-wide token ids that shard `number`'s documents use.
    func present(shard number: Int) -> [UInt32] {
        uses[number].indices.filter { uses[number][$0] }.map(UInt32.init)
    }

    func sorted(shard number: Int) throws -> DocumentSorter.Merge {
        try sorters[number].sorted()
    }
}
