import Crypto
import Foundation
import SparrowCoordinator
import SparrowSecurity
import SparrowWire
import Testing
import X509

/// The attacks of issue 16, tried against a `local up --secure` cluster with every credential
/// an attacker might hold: each is refused, nothing changes on disk, and the cluster still serves.
@Suite(.serialized) struct SecurityTests {
    static let vocabulary = 300

    /// The credentials an attacker might hold, as client settings (nil: plaintext).
    func attackers(_ cluster: LocalTestCluster) throws -> [(String, ClientSecurity)] {
        let security = try #require(cluster.security)
        let scratch = cluster.data + "/attacker"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        func identity(_ certificate: String, _ key: String) throws -> TLSIdentity {
            try TLSIdentity(files: TLSFiles(ca: security.ca, certificate: certificate, key: key))
        }
        // Another CA's coordinator certificate.
        let stranger = try CertificateAuthority.create(name: "not the cluster's CA")
        try stranger.issue(PeerIdentity(role: .coordinator, id: "coordinator"), hosts: [], days: 30)
            .save(certificatePath: scratch + "/wrong-ca.pem", keyPath: scratch + "/wrong-ca.key")
        // The cluster CA's coordinator certificate, expired.
        let authority = try CertificateAuthority.load(certificatePath: security.ca, keyPath: security.directory + "/ca.key")
        try authority.issue(PeerIdentity(role: .coordinator, id: "coordinator"), hosts: [], days: 1, now: Date().addingTimeInterval(-10 * 86_400))
            .save(certificatePath: scratch + "/expired.pem", keyPath: scratch + "/expired.key")
        // A self-signed certificate that claims to be the coordinator.
        try Self.selfSigned(PeerIdentity(role: .coordinator, id: "coordinator"), certificate: scratch + "/self.pem", key: scratch + "/self.key")
        let anonymous = try TLSIdentity(files: TLSFiles(ca: security.ca, certificate: nil, key: nil))
        return [
            ("plaintext", .none),
            ("TLS without a certificate", ClientSecurity(tls: anonymous)),
            ("a read key", ClientSecurity(tls: anonymous, apiKey: security.keys["read"])),
            ("a write key", ClientSecurity(tls: anonymous, apiKey: security.keys["write"])),
            ("a node certificate", ClientSecurity(tls: try TLSIdentity(files: security.files(PeerIdentity(role: .node, id: "node-1"))))),
            ("another CA's certificate", ClientSecurity(tls: try identity(scratch + "/wrong-ca.pem", scratch + "/wrong-ca.key"))),
            ("an expired certificate", ClientSecurity(tls: try identity(scratch + "/expired.pem", scratch + "/expired.key"))),
            ("a self-signed certificate", ClientSecurity(tls: try identity(scratch + "/self.pem", scratch + "/self.key"))),
        ]
    }

    static func selfSigned(_ identity: PeerIdentity, certificate path: String, key keyPath: String) throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(identity.id) }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date().addingTimeInterval(-60),
            notValidAfter: Date().addingTimeInterval(86_400), issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { SubjectAlternativeNames([.uniformResourceIdentifier(identity.uri)]) },
            issuerPrivateKey: .init(key))
        try SecurityFiles.write(try certificate.serializeAsPEM().pemString, to: path, private: false)
        try SecurityFiles.write(key.pemRepresentation, to: keyPath, private: true)
    }

    /// The node calls an attacker would make, each with the request that did harm before.
    static let nodeAttacks: [(String, @Sendable (RPCClient) async throws -> Void)] = [
        ("copy a shard (CreateCheckpoint + ReadCheckpoint)", { client in
            var create = Sparrow_V1_CreateCheckpointRequest()
            create.shard = "shard-0"
            create.moveID = "theft"
            let listing: Sparrow_V1_CreateCheckpointResponse = try await client.call(ShardMethod.createCheckpoint, create, timeout: .seconds(10))
            var read = Sparrow_V1_ReadCheckpointRequest()
            read.shard = "shard-0"
            read.moveID = "theft"
            read.name = listing.files.first?.name ?? "CURRENT"
            read.length = 1 << 20
            let _: Sparrow_V1_ReadCheckpointResponse = try await client.call(ShardMethod.readCheckpoint, read, timeout: .seconds(10))
        }),
        ("upsert a forged document", { client in
            var request = Sparrow_V1_UpsertRequest()
            request.shard = "shard-0"
            var document = Sparrow_V1_Document()
            document.id = "forged"
            document.vector = .init(["t1": 1000])
            request.documents = [document]
            let _: Sparrow_V1_UpsertResponse = try await client.call(ShardMethod.upsert, request, timeout: .seconds(10))
        }),
        ("delete documents", { client in
            var request = Sparrow_V1_DeleteRequest()
            request.shard = "shard-0"
            request.ids = (0..<50).map { "doc-\($0)" }
            let _: Sparrow_V1_DeleteResponse = try await client.call(ShardMethod.delete, request, timeout: .seconds(10))
        }),
        ("poison the epoch", { client in
            var request = Sparrow_V1_UpsertRequest()
            request.shard = "shard-0"
            request.epoch = .max
            let _: Sparrow_V1_UpsertResponse = try await client.call(ShardMethod.upsert, request, timeout: .seconds(10))
        }),
        ("drop the shard", { client in
            var request = Sparrow_V1_DropShardRequest()
            request.shard = "shard-0"
            request.epoch = .max
            let _: Sparrow_V1_DropShardResponse = try await client.call(ShardMethod.dropShard, request, timeout: .seconds(10))
        }),
        ("install an empty checkpoint", { client in
            var request = Sparrow_V1_InstallCheckpointRequest()
            request.shard = "shard-0"
            request.moveID = "wipe"
            let _: Sparrow_V1_InstallCheckpointResponse = try await client.call(ShardMethod.installCheckpoint, request, timeout: .seconds(10))
        }),
    ]

    /// Every file under a node's data directory (names and sizes), and its epoch.
    static func snapshot(_ directory: String) -> [String: Int] {
        var files: [String: Int] = [:]
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return files }
        while let path = walker.nextObject() as? String {
            guard !path.hasSuffix("/LOG") && !path.contains("LOG.old") && path != "log" else { continue }
            files[path] = (try? FileManager.default.attributesOfItem(atPath: directory + "/" + path)[.size] as? Int) ?? -1
        }
        return files
    }

    func search(_ client: RPCClient) async throws -> Sparrow_V1_QueryResponse {
        var request = Sparrow_V1_QueryRequest()
        request.vector = .init(["t1": 1, "t2": 0.5, "t3": 2])
        request.k = 20
        return try await client.call(CoordinatorMethod.search, request, timeout: .seconds(10))
    }

    @Test func everyAttackIsRefusedWithEveryCredentialAndNothingChanges() async throws {
        let records = GeneratedCorpus.documents(400, vocabulary: Self.vocabulary, seed: 61)
        let cluster = try LocalTestCluster(records: records, shards: 2)
        defer { cluster.down() }
        let operatorClient = try cluster.client()
        defer { Task { await operatorClient.close() } }
        let before = try await search(operatorClient)
        #expect(before.coverage.shardsOk == 2 && before.hits.count == 20)
        let node = cluster.data + "/cluster/node-0"
        let files = Self.snapshot(node)
        let epoch = try? String(contentsOfFile: node + "/EPOCH", encoding: .utf8)

        for (who, security) in try attackers(cluster) {
            let client = RPCClient(try cluster.node("node-0"), security: security)
            for (attack, call) in Self.nodeAttacks {
                do {
                    try await call(client)
                    Issue.record("\(attack) with \(who) succeeded")
                } catch let error as RPCError {
                    #expect([.unavailable, .unauthenticated, .permissionDenied].contains(error.code), "\(attack) with \(who): \(error)")
                }
            }
            await client.close()
            // Take a shard over through the coordinator: add a node of one's own, move the shard to it.
            let coordinator = RPCClient(cluster.coordinator, security: security)
            var add = Sparrow_V1_AddNodeRequest()
            add.address = "127.0.0.1:9"
            add.node = "evil"
            var move = Sparrow_V1_MoveShardRequest()
            move.shard = "shard-0"
            move.from = "node-0"
            move.to = "evil"
            let (addNode, moveShard) = (add, move)
            let takeover: [(String, @Sendable () async throws -> Sparrow_V1_MapChangeResponse)] = [
                ("AddNode", { try await coordinator.call(CoordinatorMethod.addNode, addNode, timeout: .seconds(10)) }),
                ("MoveShard", { try await coordinator.call(CoordinatorMethod.moveShard, moveShard, timeout: .seconds(10)) }),
            ]
            for (attack, call) in takeover {
                do {
                    _ = try await call()
                    Issue.record("\(attack) with \(who) succeeded")
                } catch let error as RPCError {
                    #expect([.unavailable, .unauthenticated, .permissionDenied].contains(error.code), "\(attack) with \(who): \(error)")
                }
            }
            await coordinator.close()
        }

        // Even the operator cannot add a node under an id its certificate does not name.
        let impostor = try LocalTestCluster.run(["ctl", "add-node", try cluster.node("node-1").description, "--id", "node-9"] + cluster.access)
        #expect(impostor.status != 0 && impostor.text.contains("the server is node:node-1, expected node:node-9"), "\(impostor.text)")

        #expect(Self.snapshot(node) == files, "node-0's data directory changed")
        #expect((try? String(contentsOfFile: node + "/EPOCH", encoding: .utf8)) == epoch)
        let after = try await search(operatorClient)
        #expect(after.hits.map(\.id) == before.hits.map(\.id) && after.coverage.shardsOk == 2)
        let status = try LocalTestCluster.run(["ctl", "status"] + cluster.access)
        #expect(!status.text.contains("evil") && status.text.contains("epoch 1,"), "\(status.text)")
        let audit = try String(contentsOfFile: node + "/log", encoding: .utf8)
        #expect(audit.contains("audit.outcome=permission_denied"), "refused control calls are audited")
    }

    @Test func aReadKeySearchesButCannotWriteAndARevokedKeyIsRefusedWithinASecond() async throws {
        let records = GeneratedCorpus.documents(200, vocabulary: Self.vocabulary, seed: 62)
        let cluster = try LocalTestCluster(records: records, shards: 1)
        defer { cluster.down() }
        let security = try #require(cluster.security)
        let reader = try cluster.client(key: .read)
        defer { Task { await reader.close() } }
        #expect(try await search(reader).coverage.shardsOk == 1)
        var write = Sparrow_V1_WriteRequest()
        var document = Sparrow_V1_Document()
        document.id = "new"
        document.vector = .init(["t1": 1])
        write.upserts = [document]
        await #expect(throws: RPCError(.permissionDenied, "'sparrow.v1.Coordinator/Write' needs an API key of scope write; key \(Self.keyID(security.keys["read"]!)) has read")) {
            let _: Sparrow_V1_WriteResponse = try await reader.call(CoordinatorMethod.write, write, timeout: .seconds(10))
        }
        let writer = try cluster.client(key: .write)
        defer { Task { await writer.close() } }
        let written: Sparrow_V1_WriteResponse = try await writer.call(CoordinatorMethod.write, write, timeout: .seconds(10))
        #expect(written.upserted == 1)

        // HTTP: no key 401, the read key searches.
        let url = try cluster.httpURL()
        let anonymous = try LocalTestCluster.run(executable: "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", security.ca, url + "/v1/cluster"])
        #expect(anonymous.text == "401")
        // The console's page is static and open to all; everything it shows comes from the API,
        // which a stranger is refused, stored fields included.
        let page = try LocalTestCluster.run(executable: "/usr/bin/curl", ["-s", "--cacert", security.ca, url + "/"])
        #expect(page.text.contains("<title>Sparrow console</title>"))
        let strangerFields = try LocalTestCluster.run(executable: "/usr/bin/curl", [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", security.ca, "-X", "POST", url + "/v1/search", "-d", #"{"query": "x", "fields": true}"#,
        ])
        #expect(strangerFields.text == "401")
        let keyed = try LocalTestCluster.run(executable: "/usr/bin/curl", [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", security.ca, "-H", "Authorization: Bearer \(security.keys["read"]!)", url + "/v1/cluster",
        ])
        #expect(keyed.text == "200")
        // An invented method is refused before any route or metric sees it (no label from a client's string).
        let invented = try LocalTestCluster.run(executable: "/usr/bin/curl", [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", security.ca, "-X", "INVENTED1", url + "/v1/cluster",
        ])
        #expect(invented.text == "400")
        let metrics = try LocalTestCluster.run(executable: "/usr/bin/curl", ["-s", "--cacert", security.ca, "-H", "Authorization: Bearer \(security.keys["read"]!)", url + "/metrics"])
        #expect(metrics.text.contains("sparrow_rpc_requests_total") && !metrics.text.contains("INVENTED1"))

        let revoked = try LocalTestCluster.run(["keys", "revoke", Self.keyID(security.keys["read"]!), "--file", security.keysFile])
        #expect(revoked.status == 0, "\(revoked.text)")
        let started = ContinuousClock.now
        var refusedAfter: Duration?
        while ContinuousClock.now - started < .seconds(5) {
            do {
                _ = try await search(reader)
            } catch let error as RPCError where error.code == .unauthenticated {
                refusedAfter = ContinuousClock.now - started
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let after = try #require(refusedAfter, "the revoked key still searched after 5 s")
        #expect(after < .seconds(1))
    }

    @Test func failedHandshakesLeaveNoOpenFiles() async throws {
        let cluster = try LocalTestCluster(records: GeneratedCorpus.documents(50, vocabulary: Self.vocabulary, seed: 63), shards: 1)
        defer { cluster.down() }
        let pid = try #require(cluster.pids["node-0"])
        func openFiles() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        let node = try cluster.node("node-0")
        let before = openFiles()
        for n in 0..<1000 {
            let socket = try RawSocket(node)
            try socket.send(n % 2 == 0 ? Array("SPRW\u{1}\u{0}\u{0}\u{0}\u{0}\u{0}".utf8) : Array(repeating: 0x16, count: 64))
            #expect(socket.waitForClose(seconds: 5), "connection \(n) was kept open")
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while openFiles() > before + 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(openFiles() <= before + 2, "open files went from \(before) to \(openFiles())")
        let client = try cluster.nodeClient("node-0")
        let health: Sparrow_V1_HealthResponse = try await client.call(ShardMethod.health, Sparrow_V1_HealthRequest(), timeout: .seconds(5))
        #expect(health.serving)
        await client.close()
    }

    @Test func sighupReloadsARotatedCertificate() async throws {
        let cluster = try LocalTestCluster(records: GeneratedCorpus.documents(50, vocabulary: Self.vocabulary, seed: 64), shards: 1)
        defer { cluster.down() }
        let security = try #require(cluster.security)
        let reissued = try LocalTestCluster.run(["certs", "issue", "--role", "node", "--id", "node-0", "--host", "127.0.0.1", "--days", "7", "--ca", security.directory])
        #expect(reissued.status == 0, "\(reissued.text)")
        kill(try #require(cluster.pids["node-0"]), SIGHUP)
        let log = cluster.data + "/cluster/node-0/log"
        let deadline = ContinuousClock.now + .seconds(10)
        while !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("certificates reloaded") && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let text = try String(contentsOfFile: log, encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.contains("certificates reloaded") })
        let day = DateFormatter()
        day.dateFormat = "yyyy-MM-dd"
        day.timeZone = TimeZone(identifier: "UTC")
        #expect(line.contains(day.string(from: Date().addingTimeInterval(7 * 86_400))), "the reloaded certificate is the 7-day one: \(line)")
        let client = try cluster.nodeClient("node-0")
        let health: Sparrow_V1_HealthResponse = try await client.call(ShardMethod.health, Sparrow_V1_HealthRequest(), timeout: .seconds(5))
        #expect(health.serving)
        await client.close()
    }

    static func keyID(_ key: String) -> String { String(key.dropFirst(APIKey.prefix.count).prefix(12)) }
}
