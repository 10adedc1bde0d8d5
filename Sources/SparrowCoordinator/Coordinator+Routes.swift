import SparrowWire

extension Coordinator {
    /// The coordinator's protobuf-over-TCP methods.
    public var routes: RPCRoutes {
        var routes = RPCRoutes()
        routes.on(CoordinatorMethod.search) { (request: Sparrow_V1_QueryRequest, _) in try await self.search(request) }
        routes.on(CoordinatorMethod.cluster) { (_: Sparrow_V1_ClusterRequest, _) in self.clusterResponse }
        routes.on(CoordinatorMethod.activateBuild) { (request: Sparrow_V1_ActivateBuildRequest, _) in try await self.activateBuild(request) }
        return routes
    }
}
