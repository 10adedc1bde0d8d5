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
}

/// The coordinator service's methods ("sparrow.v1.Coordinator/<Name>").
public enum CoordinatorMethod {
    /// QueryRequest → QueryResponse.
    public static let search = "sparrow.v1.Coordinator/Search"
    /// ClusterRequest → ClusterResponse.
    public static let cluster = "sparrow.v1.Coordinator/Cluster"
    /// ActivateBuildRequest → ActivateBuildResponse.
    public static let activateBuild = "sparrow.v1.Coordinator/ActivateBuild"
}
