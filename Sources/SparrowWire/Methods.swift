import SwiftProtobuf

/// The shard service's methods ("sparrow.v1.Shard/<Name>").
public enum ShardMethod {
    public static let search = "sparrow.v1.Shard/Search"
    public static let batchSearch = "sparrow.v1.Shard/BatchSearch"
    public static let explain = "sparrow.v1.Shard/Explain"
    public static let getDocument = "sparrow.v1.Shard/GetDocument"
    public static let stats = "sparrow.v1.Shard/Stats"
    public static let health = "sparrow.v1.Shard/Health"
    public static let upsert = "sparrow.v1.Shard/Upsert"
    public static let delete = "sparrow.v1.Shard/Delete"
    public static let bulkLoad = "sparrow.v1.Shard/BulkLoad"
    public static let compact = "sparrow.v1.Shard/Compact"
    public static let uploadBundle = "sparrow.v1.Shard/UploadBundle"
    public static let prepareBundle = "sparrow.v1.Shard/PrepareBundle"
    public static let activateBundle = "sparrow.v1.Shard/ActivateBundle"
    public static let createCheckpoint = "sparrow.v1.Shard/CreateCheckpoint"
    public static let readCheckpoint = "sparrow.v1.Shard/ReadCheckpoint"
    public static let dropCheckpoint = "sparrow.v1.Shard/DropCheckpoint"
    public static let receiveCheckpoint = "sparrow.v1.Shard/ReceiveCheckpoint"
    public static let installCheckpoint = "sparrow.v1.Shard/InstallCheckpoint"
    public static let readChanges = "sparrow.v1.Shard/ReadChanges"
    public static let applyChanges = "sparrow.v1.Shard/ApplyChanges"
    public static let dropShard = "sparrow.v1.Shard/DropShard"

    public static let all = [
        search, batchSearch, explain, getDocument, stats, health, upsert, delete, bulkLoad, compact, uploadBundle, prepareBundle,
        activateBundle, createCheckpoint, readCheckpoint, dropCheckpoint, receiveCheckpoint, installCheckpoint, readChanges,
        applyChanges, dropShard,
    ]

    /// The request message each method takes (its route decodes the payload as this; the tests
    /// hold `ShardNode.routes` to it, and the fuzzers decode by it).
    public static let requestTypes: [String: any Message.Type] = [
        search: Sparrow_V1_SearchRequest.self, batchSearch: Sparrow_V1_BatchSearchRequest.self, explain: Sparrow_V1_ExplainRequest.self,
        getDocument: Sparrow_V1_GetDocumentRequest.self, stats: Sparrow_V1_StatsRequest.self, health: Sparrow_V1_HealthRequest.self,
        upsert: Sparrow_V1_UpsertRequest.self, delete: Sparrow_V1_DeleteRequest.self, bulkLoad: Sparrow_V1_BulkLoadRequest.self,
        compact: Sparrow_V1_CompactRequest.self, uploadBundle: Sparrow_V1_UploadBundleRequest.self,
        prepareBundle: Sparrow_V1_PrepareBundleRequest.self, activateBundle: Sparrow_V1_ActivateBundleRequest.self,
        createCheckpoint: Sparrow_V1_CreateCheckpointRequest.self, readCheckpoint: Sparrow_V1_ReadCheckpointRequest.self,
        dropCheckpoint: Sparrow_V1_DropCheckpointRequest.self, receiveCheckpoint: Sparrow_V1_ReceiveCheckpointRequest.self,
        installCheckpoint: Sparrow_V1_InstallCheckpointRequest.self, readChanges: Sparrow_V1_ReadChangesRequest.self,
        applyChanges: Sparrow_V1_ApplyChangesRequest.self, dropShard: Sparrow_V1_DropShardRequest.self,
    ]
}

/// The coordinator service's methods ("sparrow.v1.Coordinator/<Name>").
public enum CoordinatorMethod {
    /// QueryRequest → QueryResponse.
    public static let search = "sparrow.v1.Coordinator/Search"
    /// ClusterRequest → ClusterResponse.
    public static let cluster = "sparrow.v1.Coordinator/Cluster"
    /// ActivateBuildRequest → ActivateBuildResponse.
    public static let activateBuild = "sparrow.v1.Coordinator/ActivateBuild"
    /// WriteRequest → WriteResponse.
    public static let write = "sparrow.v1.Coordinator/Write"
    /// Map changes, each answering MapChangeResponse.
    public static let addNode = "sparrow.v1.Coordinator/AddNode"
    public static let removeNode = "sparrow.v1.Coordinator/RemoveNode"
    public static let drainNode = "sparrow.v1.Coordinator/DrainNode"
    public static let moveShard = "sparrow.v1.Coordinator/MoveShard"
    public static let setReplicas = "sparrow.v1.Coordinator/SetReplicas"
    public static let rebalance = "sparrow.v1.Coordinator/Rebalance"
    /// StageBundleRequest → StageBundleResponse: `ctl load`'s upload and prepare steps, relayed to a node.
    public static let stageBundle = "sparrow.v1.Coordinator/StageBundle"
    /// ReplicaStatsRequest → ReplicaStatsResponse.
    public static let replicaStats = "sparrow.v1.Coordinator/ReplicaStats"

    public static let all = [search, cluster, activateBuild, write, addNode, removeNode, drainNode, moveShard, setReplicas, rebalance, stageBundle, replicaStats]

    /// The request message each method takes (see `ShardMethod.requestTypes`).
    public static let requestTypes: [String: any Message.Type] = [
        search: Sparrow_V1_QueryRequest.self, cluster: Sparrow_V1_ClusterRequest.self, activateBuild: Sparrow_V1_ActivateBuildRequest.self,
        write: Sparrow_V1_WriteRequest.self, addNode: Sparrow_V1_AddNodeRequest.self, removeNode: Sparrow_V1_RemoveNodeRequest.self,
        drainNode: Sparrow_V1_DrainNodeRequest.self, moveShard: Sparrow_V1_MoveShardRequest.self, setReplicas: Sparrow_V1_SetReplicasRequest.self,
        rebalance: Sparrow_V1_RebalanceRequest.self, stageBundle: Sparrow_V1_StageBundleRequest.self,
        replicaStats: Sparrow_V1_ReplicaStatsRequest.self,
    ]
}
