import Foundation
import SparrowIO
import SparrowWire

/// Epoch fencing: a node remembers the highest cluster-map epoch it has seen, in DATA/EPOCH,
/// and refuses writes sent on an older map (a coordinator or operator tool that missed a change).
/// It learns epochs only from the writes and control calls themselves, which only a coordinator
/// may send (see `AccessPolicy.shardNode`): never from a read or a health check, which other
/// callers could use to poison it, and an epoch of 0 is as old as any.
extension ShardNode {
    static func epochFile(_ dataDirectory: String) -> String { (dataDirectory as NSString).appendingPathComponent("EPOCH") }

    static func readEpoch(_ dataDirectory: String) throws -> UInt64 {
        let path = epochFile(dataDirectory)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        guard let value = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw RPCError(.internal, "\(path) holds '\(text)', not an epoch number")
        }
        return value
    }

    /// The highest epoch seen so far.
    public var knownEpoch: UInt64 { epoch.withLock { $0 } }

    /// Adopts `seen` when it is newer (0: no epoch).
    func observe(epoch seen: UInt64) throws {
        try epoch.withLock { known in
            guard seen > known else { return }
            try AtomicOutputFile.write("\(seen)\n", to: Self.epochFile(dataDirectory))
            logger.info("epoch advanced", metadata: ["node.epoch": "\(seen)", "node.previous_epoch": "\(known)"])
            known = seen
        }
    }

    /// Admits a write sent at epoch `sent`: refused when older than the node's, adopted when newer.
    func admit(write sent: UInt64) throws {
        let known = knownEpoch
        guard sent >= known else {
            throw RPCError(.staleEpoch, "write sent at epoch \(sent), but node \(nodeID) has seen epoch \(known): refresh the cluster map and retry")
        }
        try observe(epoch: sent)
    }
}
