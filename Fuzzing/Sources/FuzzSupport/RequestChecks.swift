import SparrowCoordinator
import SparrowShard
import SparrowWire
import SwiftProtobuf

/// Every request of the node and the coordinator, decoded as their routes decode it (by
/// `ShardMethod.requestTypes` and `CoordinatorMethod.requestTypes`, which tests hold to the
/// routes) and put through the checks their handlers make before touching a shard, the disk or
/// the network. Nothing here does I/O.
public enum RequestChecks {
    /// Every method, answered at once: a request that decodes and passes the checks is
    /// answered with itself, re-serialized.
    public static let routes: RPCRoutes = {
        var routes = RPCRoutes()
        for (method, type) in ShardMethod.requestTypes.merging(CoordinatorMethod.requestTypes, uniquingKeysWith: { first, _ in first }) {
            register(type, method, in: &routes)
        }
        return routes
    }()

    /// The request type of `method` (nil: neither service has it).
    public static func requestType(of method: String) -> (any Message.Type)? {
        ShardMethod.requestTypes[method] ?? CoordinatorMethod.requestTypes[method]
    }

    private static func register<Request: Message>(_: Request.Type, _ method: String, in routes: inout RPCRoutes) {
        routes.immediate(method) { (request: Request, _) -> Request in
            try check(request)
            return request
        }
    }

    /// A three-shard map, for routing writes.
    static let cluster = ClusterMap(
        epoch: 7, nodes: [.init(id: "node-1", address: "127.0.0.1:7101"), .init(id: "node-2", address: "127.0.0.1:7102")],
        shards: (0..<3).map { .init(id: "shard-\($0)", replicas: ["node-1", "node-2"]) })

    /// A coordinator's encoder, for checking builds against.
    static let encoder: Sparrow_V1_QueryEncoderInfo = {
        var info = Sparrow_V1_QueryEncoderInfo()
        info.weighting = "idf"
        info.tokenizer = "0123456789abcdef"
        info.idf = "fedcba9876543210"
        return info
    }()

    /// The checks a handler of `request` makes before any work; throws what it would answer.
    public static func check(_ request: any Message) throws {
        switch request {
        // The node's reads.
        case let request as Sparrow_V1_SearchRequest:
            names(request.shard, request.build)
            _ = try ShardNode.checkedSearch(request)
            _ = try request.mode.checked(field: "mode")
            _ = request.filter.values
        case let request as Sparrow_V1_BatchSearchRequest:
            names(request.shard, request.build)
            _ = try ShardNode.checkedBatch(request)
            _ = try request.mode.checked(field: "mode")
            _ = request.queries.map(\.terms.weights)
            _ = request.filter.values
        case let request as Sparrow_V1_ExplainRequest:
            names(request.shard, request.build)
            _ = request.query.weights
        case let request as Sparrow_V1_GetDocumentRequest:
            names(request.shard)
        case let request as Sparrow_V1_StatsRequest:
            names(request.shard)
        // The node's writes and transfers.
        case let request as Sparrow_V1_UpsertRequest:
            names(request.shard)
            _ = try request.documents.map(ShardNode.record)
        case let request as Sparrow_V1_DeleteRequest:
            names(request.shard)
        case let request as Sparrow_V1_BulkLoadRequest:
            names(request.shard, request.uploadID)
            _ = try request.documents.map(ShardNode.record)
        case let request as Sparrow_V1_UploadBundleRequest:
            names(request.shard, request.buildID)
        case let request as Sparrow_V1_PrepareBundleRequest:
            names(request.shard, request.buildID)
        case let request as Sparrow_V1_ActivateBundleRequest:
            names(request.shard, request.buildID)
        case let request as Sparrow_V1_CreateCheckpointRequest:
            names(request.shard, request.moveID)
        case let request as Sparrow_V1_ReadCheckpointRequest:
            names(request.shard, request.moveID, request.name)
        case let request as Sparrow_V1_ReceiveCheckpointRequest:
            names(request.shard, request.moveID, request.name)
        case let request as Sparrow_V1_InstallCheckpointRequest:
            names(request.shard, request.moveID)
            for file in request.files { names(file.name) }
            try ShardNode.checkListing(request)
        case let request as Sparrow_V1_ApplyChangesRequest:
            names(request.shard)
            _ = try ShardNode.changes(request)
        case let request as Sparrow_V1_DropShardRequest:
            names(request.shard)
        // The coordinator's.
        case let request as Sparrow_V1_QueryRequest:
            _ = try SearchQuery(request)
        case let request as Sparrow_V1_WriteRequest:
            _ = try Coordinator.route(request, in: cluster)
        case let request as Sparrow_V1_ActivateBuildRequest:
            let build = request.hasEncoder ? request.encoder : nil
            _ = Coordinator.incompatibility(build: build, coordinator: encoder)
            _ = Coordinator.incompatibility(build: build, coordinator: nil)
        case let request as Sparrow_V1_AddNodeRequest:
            _ = try Endpoint(parsing: request.address)
        default:
            break   // nothing to check before the work (health, compaction, map changes by node id…)
        }
    }

    /// Ids a node turns into file names (shards, builds, moves, checkpoint files) are checked
    /// with `ShardNode.isValidShardID`; here every name a request carries is, and one it admits
    /// must stay a single file name inside its directory.
    private static func names(_ names: String...) {
        for name in names where ShardNode.isValidShardID(name) {
            invariant(
                !name.contains("/") && !name.contains("\0") && !name.hasPrefix(".") && name.utf8.count <= 255,
                "\(RPCError.printable(name)) is admitted as a file name")
        }
    }
}

/// A service whose every call is answered at once on the calling thread: an `EmbeddedChannel`
/// belongs to one thread, so a method without a route (which a server answers from a task)
/// is refused here on the spot, with the same error.
public struct ImmediateService: RPCService {
    public let routes: RPCRoutes

    public init(_ routes: RPCRoutes) {
        self.routes = routes
    }

    public func call(method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) async throws -> [UInt8] {
        try await routes.call(method: method, payload: payload, deadline: deadline)
    }

    public func immediate(method: String) -> RPCImmediateHandler? {
        routes.immediate(method: method) ?? { [routes] _, _ in throw routes.unknownMethod(method) }
    }
}
