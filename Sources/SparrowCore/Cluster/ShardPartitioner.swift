/// Assigns documents to shards by a stable hash of their external id (64-bit FNV-1a of its
/// UTF-8 bytes, modulo the shard count): the same id lands on the same shard on every
/// machine, in every build and every Swift version (unlike `Hasher`, which is seeded).
public enum ShardPartitioner {
    public static func shard(of id: String, count: Int) -> Int {
        precondition(count > 0, "shard count must be positive")
        var hash = FNV1a()
        hash.add(id)
        return Int(hash.value % UInt64(count))
    }

    /// The conventional name of shard `index`: "shard-0", "shard-1", …
    public static func shardID(_ index: Int) -> String { "shard-\(index)" }
}
