import Foundation
import SparrowEncoder
import SparrowIO
import SparrowWire
import Yams

/// The cluster file: which nodes exist, which node(s) serve each shard, and an epoch that
/// rises on every change. YAML:
///
///     epoch: 3
///     nodes:
///       - id: node-1
///         address: 10.0.0.1:7100
///     shards:
///       - id: shard-0
///         replicas: [node-1, node-2]     # tried in this order, rotating per query
///         stale: [node-2]                # optional: missed writes; serves again once caught up
///       - id: node-2
///         address: 10.0.0.2:7100
///         state: draining                 # optional: being emptied (`ctl drain-node`)
///     build: 794f4a928a0392d8             # optional: the build searches ask for (set by `ctl load`)
///     moves:                             # optional: shard copies in progress (`ctl move-shard`)
///       - {id: 5f3a…, shard: shard-0, source: node-1, from: node-1, to: node-2, phase: copy}
///     encoder:                           # optional: for text queries
///       model: /var/lib/sparrow/model    # tokenizer.json or vocab.txt (+ idf.json)
///       idf: /var/lib/sparrow/idf.json   # optional, default model/idf.json
///       weighting: idf                   # or bm25: every query token weighs 1
public struct ClusterMap: Codable, Sendable, Equatable {
    public struct Node: Codable, Sendable, Equatable {
        public var id: String
        public var address: String
        /// nil: in service; `draining`: being emptied, no shard is placed on it.
        public var state: String?

        public init(id: String, address: String, state: String? = nil) {
            self.id = id
            self.address = address
            self.state = state
        }

        public var isDraining: Bool { state == "draining" }
    }

    /// A copy of a shard between nodes, begun and not finished (see `Coordinator+Moves`).
    public struct Move: Codable, Sendable, Equatable {
        public enum Phase: String, Codable, Sendable {
            case copy
            case catchUp = "catch-up"
            case switched
        }

        public var id: String
        public var shard: String
        /// The replica the copy is made from.
        public var source: String
        /// The replica the move takes away (nil: a replica is added).
        public var from: String?
        public var to: String
        public var phase: Phase

        public init(id: String, shard: String, source: String, from: String?, to: String, phase: Phase) {
            self.id = id
            self.shard = shard
            self.source = source
            self.from = from
            self.to = to
            self.phase = phase
        }
    }

    public struct ShardEntry: Codable, Sendable, Equatable {
        public var id: String
        public var replicas: [String]
        /// Replicas that missed acknowledged writes (nil: none): they serve no searches and take
        /// no writes until they have caught up (see `Coordinator+Repair`). The others are the
        /// in-sync set, which every acknowledged write reached.
        public var stale: [String]?

        public init(id: String, replicas: [String], stale: [String]? = nil) {
            self.id = id
            self.replicas = replicas
            self.stale = stale
        }

        /// The replicas that hold every acknowledged write: they serve searches and take writes.
        public var inSync: [String] {
            guard let stale else { return replicas }
            return replicas.filter { !stale.contains($0) }
        }

        /// Marks `nodes` stale (the in-sync set must keep at least one replica).
        mutating func markStale(_ nodes: [String]) {
            let all = Set((stale ?? []) + nodes.filter(replicas.contains))
            stale = all.isEmpty ? nil : replicas.filter(all.contains)
        }

        /// Takes `node` back into the in-sync set (or forgets it, when it leaves the replicas).
        mutating func markInSync(_ node: String) {
            stale = stale?.filter { $0 != node && replicas.contains($0) }
            if stale?.isEmpty == true { stale = nil }
        }
    }

    public struct Encoder: Codable, Sendable, Equatable {
        public var model: String
        public var idf: String?
        /// `idf` (default): tokens weighted by the IDF table; `bm25`: every token 1, for
        /// indexes built with BM25 document weights.
        public var weighting: String?

        public init(model: String, idf: String? = nil, weighting: String? = nil) {
            self.model = model
            self.idf = idf
            self.weighting = weighting
        }

        /// The query encoder this entry describes.
        public func load() throws -> QueryEncoder {
            switch weighting ?? "idf" {
            case "idf": return try QueryEncoder.load(modelDirectory: model, idfPath: idf)
            case "bm25": return try QueryEncoder.load(modelDirectory: model, uniform: true)
            case let other: throw ClusterError.file(path: "encoder.weighting", reason: "'\(other)' is not idf or bm25")
            }
        }
    }

    public var epoch: UInt64
    public var nodes: [Node]
    public var shards: [ShardEntry]
    /// The build (`sparrow build`) every shard serves; nil: whatever each shard holds.
    public var build: String?
    public var encoder: Encoder?
    public var moves: [Move]?

    public init(epoch: UInt64, nodes: [Node], shards: [ShardEntry], build: String? = nil, encoder: Encoder? = nil, moves: [Move]? = nil) {
        self.epoch = epoch
        self.nodes = nodes
        self.shards = shards
        self.build = build
        self.encoder = encoder
        self.moves = moves
    }

    /// Reads and validates a cluster file; errors name the file and what is wrong.
    public static func load(path: String) throws -> ClusterMap {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ClusterError.file(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws -> ClusterMap {
        let map: ClusterMap
        do {
            map = try YAMLDecoder().decode(ClusterMap.self, from: text)
        } catch let error as DecodingError {
            throw ClusterError.file(path: path, reason: Self.describe(error))
        } catch {
            throw ClusterError.file(path: path, reason: "not valid YAML: \(error)")
        }
        try map.validate(path: path)
        return map
    }

    /// Every node id unique with a host:port address, every shard id unique with at least one
    /// replica, every replica a known node.
    public func validate(path: String) throws {
        var nodeIDs = Set<String>()
        for node in nodes {
            guard nodeIDs.insert(node.id).inserted else { throw ClusterError.file(path: path, reason: "node '\(node.id)' is listed twice") }
            do {
                _ = try Endpoint(parsing: node.address)
            } catch {
                throw ClusterError.file(path: path, reason: "node '\(node.id)': address '\(node.address)' is not host:port")
            }
        }
        guard !shards.isEmpty else { throw ClusterError.file(path: path, reason: "no shards listed") }
        var shardIDs = Set<String>()
        for shard in shards {
            guard shardIDs.insert(shard.id).inserted else { throw ClusterError.file(path: path, reason: "shard '\(shard.id)' is listed twice") }
            guard !shard.replicas.isEmpty else { throw ClusterError.file(path: path, reason: "shard '\(shard.id)' has no replicas") }
            for replica in shard.replicas where !nodeIDs.contains(replica) {
                throw ClusterError.file(path: path, reason: "shard '\(shard.id)': replica '\(replica)' is not a listed node")
            }
            guard Set(shard.replicas).count == shard.replicas.count else {
                throw ClusterError.file(path: path, reason: "shard '\(shard.id)' lists a node twice among its replicas")
            }
            for node in shard.stale ?? [] where !shard.replicas.contains(node) {
                throw ClusterError.file(path: path, reason: "shard '\(shard.id)': stale replica '\(node)' is not one of its replicas")
            }
            guard !shard.inSync.isEmpty else {
                throw ClusterError.file(path: path, reason: "shard '\(shard.id)': every replica is stale; at least one must be in sync")
            }
        }
        for node in nodes where node.state != nil && !node.isDraining {
            throw ClusterError.file(path: path, reason: "node '\(node.id)': state '\(node.state!)' is not draining (leave it out for a node in service)")
        }
        for move in moves ?? [] {
            guard shardIDs.contains(move.shard), [move.source, move.to].allSatisfy(nodeIDs.contains) else {
                throw ClusterError.file(path: path, reason: "move \(move.id) names a shard or node that is not listed")
            }
        }
    }

    /// The entry of shard `id`.
    public func shard(_ id: String) -> ShardEntry? {
        shards.first { $0.id == id }
    }

    /// The move in progress of shard `id`.
    public func move(of shard: String) -> Move? {
        moves?.first { $0.shard == shard }
    }

    /// Records `move` (replacing the one with its id, if any).
    mutating func record(_ move: Move) {
        var all = (moves ?? []).filter { $0.id != move.id }
        all.append(move)
        moves = all
    }

    /// Forgets the move with id `id` (`moves` is left out of the file when none remain).
    mutating func forgetMove(_ id: String) {
        moves = moves?.filter { $0.id != id }
        if moves?.isEmpty == true { moves = nil }
    }

    /// The file's YAML text.
    public func yaml() throws -> String {
        try YAMLEncoder().encode(self)
    }

    /// Writes the map to `path` atomically (a synced temporary file, then a rename).
    public func save(path: String) throws {
        do {
            try AtomicOutputFile.write(try yaml(), to: path)
        } catch {
            throw ClusterError.file(path: path, reason: "cannot write: \(error)")
        }
    }

    public func address(of node: String) -> String? {
        nodes.first { $0.id == node }?.address
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.reduce("") { path, key in
                key.intValue.map { "\(path)[\($0)]" } ?? (path.isEmpty ? key.stringValue : "\(path).\(key.stringValue)")
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing field '\(parent.isEmpty ? key.stringValue : "\(parent).\(key.stringValue)")'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "field '\(path(context))': \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// Errors of the coordinator's configuration.
public enum ClusterError: Error, CustomStringConvertible {
    case file(path: String, reason: String)

    public var description: String {
        switch self {
        case let .file(path, reason): "\(path): \(reason)"
        }
    }
}
