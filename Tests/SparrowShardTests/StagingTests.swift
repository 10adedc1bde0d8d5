import Foundation
import Logging
import SparrowShard
import SparrowWire
import Testing

/// Staged uploads and bulk loads are bounded in bytes and expire (a node's disk and memory are
/// not for strangers to fill, nor for a load that walked away to keep).
@Suite struct StagingTests {
    func withNode(_ limits: StagingLimits, _ body: (ShardNode, RPCClient) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "sparrow-node-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let node = try ShardNode(nodeID: "n", dataDirectory: directory, staging: limits, logger: Logger(label: "test"))
        let server = try await RPCServer.bind(Endpoint(host: "127.0.0.1", port: 0), service: node.routes, logger: Logger(label: "test"))
        let client = RPCClient(server.address)
        do {
            try await body(node, client)
        } catch {
            await client.close()
            await server.shutdown()
            throw error
        }
        await client.close()
        await server.shutdown()
    }

    func upload(_ client: RPCClient, offset: UInt64, bytes: Int) async throws -> UInt64 {
        var request = Sparrow_V1_UploadBundleRequest()
        request.shard = "shard-0"
        request.buildID = "b1"
        request.offset = offset
        request.data = Data(repeating: 7, count: bytes)
        let response: Sparrow_V1_UploadBundleResponse = try await client.call(ShardMethod.uploadBundle, request, timeout: .seconds(10))
        return response.received
    }

    func code(_ body: () async throws -> Void) async -> Sparrow_V1_Status.Code? {
        do {
            try await body()
            return nil
        } catch let error as RPCError {
            return error.code
        } catch {
            return .internal
        }
    }

    @Test func uploadsPastTheLimitAreRefusedAndIdleOnesExpire() async throws {
        try await withNode(StagingLimits(maxBytes: 1 << 20, ttl: .seconds(1), minFreeBytes: 0)) { node, client in
            let received = try await upload(client, offset: 0, bytes: 700 << 10)
            #expect(received == 700 << 10)
            #expect(await code { _ = try await upload(client, offset: received, bytes: 700 << 10) } == .resourceExhausted)
            #expect(node.stagedBytes == 700 << 10, "the refused chunk was not written")
            try await Task.sleep(for: .milliseconds(1500))
            #expect(node.expireStaging() == 1)
            #expect(node.stagedBytes == 0)
            // The sender learns that its upload is gone (and `ctl load` starts it again).
            #expect(await code { _ = try await upload(client, offset: received, bytes: 1000) } == .failedPrecondition)
            #expect(try await upload(client, offset: 0, bytes: 1000) == 1000)
        }
    }

    @Test func bulkLoadsInMemoryAreBoundedAndExpire() async throws {
        try await withNode(StagingLimits(maxBytes: 256 << 10, ttl: .seconds(1), minFreeBytes: 0)) { node, client in
            var request = Sparrow_V1_BulkLoadRequest()
            request.shard = "shard-0"
            request.uploadID = "u1"
            request.documents = (0..<200).map { n in
                var document = Sparrow_V1_Document()
                document.id = "doc-\(n)"
                document.vector = .init(Dictionary(uniqueKeysWithValues: (0..<20).map { ("token-\($0)", Float(1)) }))
                return document
            }
            var outcomes: [Sparrow_V1_Status.Code?] = []
            for _ in 0..<4 {
                let call = request
                outcomes.append(await code { let _: Sparrow_V1_BulkLoadResponse = try await client.call(ShardMethod.bulkLoad, call, timeout: .seconds(10)) })
            }
            #expect(outcomes.first! == nil && outcomes.contains(.resourceExhausted), "\(outcomes)")
            #expect(node.stagedBytes > 0 && node.stagedBytes <= 256 << 10)
            try await Task.sleep(for: .milliseconds(1500))
            #expect(node.expireStaging() == 1)
            #expect(node.stagedBytes == 0)
        }
    }
}
