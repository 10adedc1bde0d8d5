import SparrowCore
import SparrowStorage
import SparrowWire
import SwiftProtobuf

/// A client of a Sparrow cluster through one coordinator's protobuf/TCP port: search, writes and
/// control, each with the deadline its kind of call needs. What the CLI, the tests and the
/// benchmarks use; `rpc` is there for calls this type does not wrap.
public final class ClusterClient: Sendable {
    public let rpc: RPCClient

    /// A client of the coordinator at `endpoint` (TLS, a certificate and an API key in `security`).
    public convenience init(_ endpoint: Endpoint, security: ClientSecurity = .none) {
        self.init(RPCClient(endpoint, security: security))
    }

    public init(_ rpc: RPCClient) {
        self.rpc = rpc
    }

    public func close() async { await rpc.close() }

    // MARK: Search and writes

    /// One search; the answer says which shards answered (`coverage`) and in which mode.
    public func search(_ request: Sparrow_V1_QueryRequest, timeout: Duration = .seconds(10)) async throws -> Sparrow_V1_QueryResponse {
        try await rpc.call(CoordinatorMethod.search, request, timeout: timeout)
    }

    /// The `k` best documents for `vector` (token → weight), exactly.
    public func search(vector: [String: Float], k: Int, timeout: Duration = .seconds(10)) async throws -> Sparrow_V1_QueryResponse {
        var request = Sparrow_V1_QueryRequest()
        request.vector = .init(vector)
        request.k = UInt32(clamping: k)
        return try await search(request, timeout: timeout)
    }

    /// Upserts `documents` and deletes `deletes`, acknowledged once the shards' in-sync replicas hold them.
    public func write(upserts documents: [TokenVectorRecord] = [], deletes: [String] = [], timeout: Duration = .seconds(60)) async throws -> Sparrow_V1_WriteResponse {
        var request = Sparrow_V1_WriteRequest()
        request.upserts = documents.map { record in
            var document = Sparrow_V1_Document()
            document.id = record.id
            document.vector = .init(record.vector)
            document.fields = .init(record.fields ?? [:])
            return document
        }
        request.deletes = deletes
        return try await write(request, timeout: timeout)
    }

    public func write(_ request: Sparrow_V1_WriteRequest, timeout: Duration = .seconds(60)) async throws -> Sparrow_V1_WriteResponse {
        try await rpc.call(CoordinatorMethod.write, request, timeout: timeout)
    }

    // MARK: The cluster

    /// The map as this coordinator serves it: nodes, shards and replicas, moves, the owner.
    public func cluster(timeout: Duration = .seconds(10)) async throws -> Sparrow_V1_ClusterResponse {
        try await rpc.call(CoordinatorMethod.cluster, Sparrow_V1_ClusterRequest(), timeout: timeout)
    }

    /// Every replica's documents, bytes and builds (each node asked).
    public func replicaStats(timeout: Duration = .seconds(30)) async throws -> Sparrow_V1_ReplicaStatsResponse {
        try await rpc.call(CoordinatorMethod.replicaStats, Sparrow_V1_ReplicaStatsRequest(), timeout: timeout)
    }

    /// One step of a build's shipping to a node (an upload chunk, or the prepare), relayed by the coordinator.
    public func stageBundle(_ request: Sparrow_V1_StageBundleRequest, timeout: Duration) async throws -> Sparrow_V1_StageBundleResponse {
        try await rpc.call(CoordinatorMethod.stageBundle, request, timeout: timeout)
    }

    /// Switches searches to a build every replica has prepared (the coordinator checks).
    public func activateBuild(_ request: Sparrow_V1_ActivateBuildRequest, timeout: Duration = .seconds(120)) async throws -> Sparrow_V1_ActivateBuildResponse {
        try await rpc.call(CoordinatorMethod.activateBuild, request, timeout: timeout)
    }

    /// A change of the map (`CoordinatorMethod.addNode`, `.removeNode`, `.drainNode`,
    /// `.moveShard`, `.setReplicas` or `.rebalance` with its request). Moves can take long: by
    /// default it waits up to a day (the coordinator carries on if the caller goes away).
    public func changeMap(_ method: String, _ request: some Message, timeout: Duration = .seconds(86_400)) async throws -> Sparrow_V1_MapChangeResponse {
        guard Self.mapChanges.contains(method) else {
            throw RPCError.invalidArgument("\(method) is not a map change; use one of \(Self.mapChanges.sorted().joined(separator: ", "))")
        }
        return try await rpc.call(method, request, timeout: timeout)
    }

    static let mapChanges: Set<String> = [
        CoordinatorMethod.addNode, CoordinatorMethod.removeNode, CoordinatorMethod.drainNode, CoordinatorMethod.moveShard,
        CoordinatorMethod.setReplicas, CoordinatorMethod.rebalance,
    ]
}
