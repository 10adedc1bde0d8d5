/// Where a shard's change log ends: the last change's sequence and the write it came from.
/// Two copies of a shard whose logs end at the same tail hold the same changes: a sequenced
/// write is applied only where the log ends at the tail it names (as Raft's log matching).
public struct ChangeTail: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var sequence: UInt64
    public var write: UInt64

    public init(sequence: UInt64, write: UInt64) {
        self.sequence = sequence
        self.write = write
    }

    public var description: String { "change \(sequence) of write \(String(write, radix: 16))" }
}

/// A write's place in its shard's order, as the coordinator assigns it: it is applied only
/// where the shard's log ends at `after`, and its changes carry `id`.
public struct SequencedWrite: Sendable, Equatable {
    public var after: ChangeTail
    public var id: UInt64

    public init(after: ChangeTail, id: UInt64) {
        self.after = after
        self.id = id
    }
}
