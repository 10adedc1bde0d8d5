/// Failures of shard storage, each naming the database path and, where there is one, the key.
public enum StorageError: Error, Equatable, CustomStringConvertible {
    /// RocksDB reported an error for an operation.
    case rocksdb(path: String, operation: String, message: String)
    /// A stored value failed its checks; `key` is printed in a readable form.
    case corrupt(path: String, key: String, reason: String)
    /// The shard's manifest is missing or not readable by this version.
    case manifest(path: String, reason: String)
    /// The caller asked for something the shard cannot do.
    case invalidRequest(String)
    /// A sequenced write does not follow this copy's last change: the copy missed writes or
    /// holds one its peers do not (see `SequencedWrite`).
    case outOfSequence(path: String, reason: String)

    public var code: String {
        switch self {
        case .rocksdb: "storage.rocksdb"
        case .corrupt: "storage.corrupt"
        case .manifest: "storage.manifest"
        case .invalidRequest: "storage.invalid_request"
        case .outOfSequence: "storage.out_of_sequence"
        }
    }

    public var description: String {
        switch self {
        case let .rocksdb(path, operation, message): "\(path): RocksDB \(operation) failed: \(message)"
        case let .corrupt(path, key, reason): "\(path): corrupt value at key \(key): \(reason)"
        case let .manifest(path, reason): "\(path): manifest: \(reason)"
        case let .invalidRequest(reason): reason
        case let .outOfSequence(path, reason): "\(path): out of sequence: \(reason)"
        }
    }
}
