import Foundation
import OpenAPIRuntime
import SparrowCore
import SparrowWire

/// The HTTP API's operations (`openapi.yaml`; the protocol and the types are generated from it).
/// A failure is thrown as `RPCError` and answered by `HTTPErrorMiddleware`.
struct HTTPHandler: APIProtocol {
    let coordinator: Coordinator
    /// Bounds the searches in progress (shared with the protobuf port): past it, 429 at once.
    let gate: WorkGate?
    let metricsText: @Sendable () -> String

    func search(_ input: Operations.Search.Input) async throws -> Operations.Search.Output {
        if let gate {
            guard gate.tryEnter() else { throw gate.refusal }
        }
        defer { gate?.leave() }
        guard case .json(let body) = input.body else { throw RPCError.invalidArgument("a search is a JSON body") }
        let query = try HTTPAPI.query(body)
        let result = try await coordinator.search(query)
        var reply = HTTPAPI.searchReply(result, explain: query.explain)
        if body.fields == true {
            let fields = await coordinator.storedFields(of: result.hits, within: query.timeout ?? .seconds(1))
            for index in reply.hits.indices { reply.hits[index].fields = .init(additionalProperties: fields[index] ?? [:]) }
        }
        return .ok(.init(body: .json(reply)))
    }

    func cluster(_ input: Operations.Cluster.Input) async throws -> Operations.Cluster.Output {
        let view = coordinator.clusterView
        typealias Schema = Components.Schemas.Cluster
        return .ok(.init(body: .json(Schema(
            epoch: Int(clamping: view.epoch), build: view.build, owner: view.owner,
            nodes: view.nodes.map { .init(node: $0.id, address: $0.address, state: $0.state, reason: $0.reason) },
            shards: view.shards.map { shard in
                .init(shard: shard.id, replicas: shard.replicas.map { .init(node: $0.node, address: $0.address, stale: $0.stale ? true : nil) })
            },
            moves: view.moves.map {
                .init(id: $0.move.id, shard: $0.move.shard, from: $0.move.from, to: $0.move.to, phase: $0.move.phase.rawValue,
                      copiedBytes: $0.copy.map { Int(clamping: $0.copiedBytes) }, totalBytes: $0.copy.map { Int(clamping: $0.totalBytes) })
            },
            orphans: view.orphans.map { .init(shard: $0.shard, node: $0.node, seenSeconds: Int($0.seenSeconds), dropInSeconds: Int($0.dropInSeconds)) }))))
    }

    func health(_ input: Operations.Health.Input) async throws -> Operations.Health.Output {
        let nodes = coordinator.nodeStates
        typealias Map = Components.Schemas.Health.MapPayload
        let map: Map = switch coordinator.store.ownership {
        case .owner: Map(role: .owner)
        case .follower(let owner): Map(role: .follower, owner: owner)
        case .unavailable(let reason): Map(role: .unavailable, reason: reason)
        }
        let healthy = nodes.values.allSatisfy { $0 == nil }
        return .ok(.init(body: .json(.init(
            status: healthy ? .ok : .degraded, nodes: .init(additionalProperties: nodes.mapValues { $0 ?? "ok" }), map: map))))
    }

    func metrics(_ input: Operations.Metrics.Input) async throws -> Operations.Metrics.Output {
        .ok(.init(body: .plainText(HTTPBody(metricsText()))))
    }

    func console(_ input: Operations.Console.Input) async throws -> Operations.Console.Output {
        .ok(.init(body: .html(HTTPBody(Console.html))))
    }

    func openapi(_ input: Operations.Openapi.Input) async throws -> Operations.Openapi.Output {
        .ok(.init(body: .json(try HTTPAPI.document.get())))
    }
}
