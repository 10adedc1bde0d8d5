import SparrowCore
import SparrowWire

/// The rule that keeps a shard's in-sync replicas identical (pure; `Coordinator+Writes` and
/// `Coordinator+Repair` carry it out).
///
/// Writes go on while at least one in-sync replica applies them; a replica that misses one is
/// marked stale in the map before the write is acknowledged, so every acknowledged write is on
/// every in-sync replica. A stale replica serves nothing until it has replayed an in-sync
/// replica's change log. (A majority rule would stop a two-replica shard's writes whenever one
/// replica is down; the owner of the map already orders every write and change, so it can
/// record the in-sync set itself, as Elasticsearch's master does.)
public enum InSyncSet {
    /// Where the in-sync set stands, given each replica's tail (nil: no answer), in map order:
    /// the longest log (a write applied on some replicas and not acknowledged stays), then the
    /// tail most replicas hold, then the first replica's. Nil when none answered.
    public static func tail(of answers: [(node: String, tail: ChangeTail?)]) -> ChangeTail? {
        let tails = answers.compactMap(\.tail)
        guard let longest = tails.map(\.sequence).max() else { return nil }
        let candidates = tails.filter { $0.sequence == longest }
        let counts = Dictionary(candidates.map { ($0, 1) }, uniquingKeysWith: +)
        let most = counts.values.max()!
        return candidates.first { counts[$0] == most }
    }

    /// After a write: the tail it left and the replicas that missed it (failed, or answered with
    /// another tail). Nil when no replica applied it: it is not acknowledged.
    public static func settle(_ answers: [(node: String, tail: ChangeTail?)]) -> (tail: ChangeTail, missed: [String])? {
        guard let tail = tail(of: answers) else { return nil }
        return (tail, answers.filter { $0.tail != tail }.map(\.node))
    }

    /// Before the first write on a map: the common tail, and the replicas that answered with
    /// another one (they missed a write that others applied, or hold one that others do not).
    /// Replicas that did not answer are left as they are: the write will tell.
    public static func reconcile(_ answers: [(node: String, tail: ChangeTail?)]) -> (tail: ChangeTail, behind: [String])? {
        guard let tail = tail(of: answers) else { return nil }
        return (tail, answers.filter { $0.tail != nil && $0.tail != tail }.map(\.node))
    }

    /// Why the target's log (`held`) does not continue into the source's (`changes`, read after
    /// the target's last change); nil when it does.
    public static func mismatch(_ held: Sparrow_V1_ShardStats, _ changes: Sparrow_V1_ReadChangesResponse, source: String, target: String) -> String? {
        if held.buildID != changes.buildID {
            return "\(target) serves build '\(held.buildID)', \(source) build '\(changes.buildID)'"
        }
        if held.lastChange > changes.lastChange {
            return "\(target) holds changes up to \(held.lastChange), beyond \(source)'s last (\(changes.lastChange))"
        }
        if changes.trimmed {
            return "\(source)'s change log no longer reaches back to change \(held.lastChange) (compacted)"
        }
        if changes.afterWrite != held.lastWrite {
            return "\(target)'s change \(held.lastChange) came from write \(String(held.lastWrite, radix: 16)), \(source)'s from write \(String(changes.afterWrite, radix: 16))"
        }
        return nil
    }
}
