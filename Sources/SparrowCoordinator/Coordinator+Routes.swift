import SparrowWire

extension Coordinator {
    /// The coordinator's protobuf-over-TCP methods.
    public var routes: RPCRoutes {
        var routes = RPCRoutes()
        routes.on(CoordinatorMethod.search, admission: admission) { (request: Sparrow_V1_QueryRequest, _) in
            Sparrow_V1_QueryResponse(try await self.admitted(SearchQuery(request)))
        }
        routes.immediate(CoordinatorMethod.cluster) { (_: Sparrow_V1_ClusterRequest, _) in self.clusterResponse }
        routes.on(CoordinatorMethod.activateBuild) { (request: Sparrow_V1_ActivateBuildRequest, _) in try await self.activateBuild(request) }
        routes.on(CoordinatorMethod.write) { (request: Sparrow_V1_WriteRequest, _) in try await self.write(request) }
        routes.on(CoordinatorMethod.addNode) { (request: Sparrow_V1_AddNodeRequest, _) in try await self.addNode(request) }
        routes.on(CoordinatorMethod.removeNode) { (request: Sparrow_V1_RemoveNodeRequest, _) in try await self.removeNode(request) }
        routes.on(CoordinatorMethod.drainNode) { (request: Sparrow_V1_DrainNodeRequest, _) in try await self.drainNode(request) }
        routes.on(CoordinatorMethod.moveShard) { (request: Sparrow_V1_MoveShardRequest, _) in try await self.moveShard(request) }
        routes.on(CoordinatorMethod.setReplicas) { (request: Sparrow_V1_SetReplicasRequest, _) in try await self.setReplicas(request) }
        routes.on(CoordinatorMethod.rebalance) { (request: Sparrow_V1_RebalanceRequest, _) in try await self.rebalance(request) }
        routes.on(CoordinatorMethod.stageBundle) { (request: Sparrow_V1_StageBundleRequest, _) in try await self.stageBundle(request) }
        routes.on(CoordinatorMethod.replicaStats) { (request: Sparrow_V1_ReplicaStatsRequest, _) in await self.replicaStats(request) }
        return routes
    }
}
