import SparrowWire

extension Coordinator {
    /// Hits whose stored fields one search may ask for (each costs a call to a replica).
    public static let maxHitsWithFields = 100

    /// Each hit's stored fields, read from an in-sync replica of its shard that is up (nil
    /// where none answered within `timeout`, or the document is gone since): for the console
    /// and searches with `"fields": true`.
    public func storedFields(of hits: [SearchResult.RankedHit], within timeout: Duration) async -> [[String: String]?] {
        let cluster = self.cluster
        return await withTaskGroup(of: (Int, [String: String]?).self) { group in
            for (index, ranked) in hits.prefix(Self.maxHitsWithFields).enumerated() {
                group.addTask {
                    var request = Sparrow_V1_GetDocumentRequest()
                    request.shard = ranked.shard
                    request.id = ranked.hit.id
                    let replicas = (cluster.shards.first { $0.id == ranked.shard }?.inSync ?? []).filter { self.downReason($0) == nil }
                    // One budget for all the tries: each replica still to try gets an equal share of
                    // what is left, so that a stalled first one can neither take it all nor stretch it.
                    let deadline = ContinuousClock.now + timeout
                    for (tried, node) in replicas.enumerated() {
                        let left = deadline - .now
                        guard left > .zero else { break }
                        if let answer = try? await self.client(node).call(
                            ShardMethod.getDocument, request, timeout: left / (replicas.count - tried), as: Sparrow_V1_GetDocumentResponse.self) {
                            return (index, answer.found ? answer.document.fields.values : nil)
                        }
                    }
                    return (index, nil)
                }
            }
            var fields = [[String: String]?](repeating: nil, count: hits.count)
            for await (index, value) in group { fields[index] = value }
            return fields
        }
    }
}
