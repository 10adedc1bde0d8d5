import Foundation
import SparrowSecurity
import Testing

@Suite struct APIKeyTests {
    func temporaryPath() -> String { NSTemporaryDirectory() + "sparrow-keys-\(UUID().uuidString).json" }

    @Test func aCreatedKeyAuthenticatesWithItsScopeAndTheFileHoldsNoSecret() throws {
        let path = temporaryPath()
        defer { unlink(path) }
        var file = APIKeysFile()
        let key = file.create(name: "search-frontend", scope: .read)
        try file.save(path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let secret = String(key.split(separator: ".").last!)
        #expect(!text.contains(secret))
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o077 == 0, "the keys file is private to its owner")
        let verifier = try APIKeyVerifier(path: path)
        let authenticated = try verifier.authenticate(key).get()
        #expect(authenticated.scope == .read && authenticated.name == "search-frontend")
        #expect(key.hasPrefix("spk_\(authenticated.id)."))
    }

    @Test func wrongMalformedAndUnknownKeysAreRefused() throws {
        let path = temporaryPath()
        defer { unlink(path) }
        var file = APIKeysFile()
        let key = file.create(name: "k", scope: .admin)
        try file.save(path)
        let verifier = try APIKeyVerifier(path: path)
        var tampered = Array(key)
        tampered[tampered.count - 1] = tampered.last == "A" ? "B" : "A"
        for bad in [String(tampered), "", "spk_", "Bearer " + key, "spk_000000000000.secret", String(repeating: "x", count: 100_000)] {
            guard case .failure = verifier.authenticate(bad) else {
                Issue.record("\(bad.prefix(40)) was accepted")
                continue
            }
        }
    }

    @Test func aRevokedKeyIsRefusedWithinOneSecondWithoutARestart() async throws {
        let path = temporaryPath()
        defer { unlink(path) }
        var file = APIKeysFile()
        let key = file.create(name: "k", scope: .write)
        let other = file.create(name: "other", scope: .read)
        try file.save(path)
        let verifier = try APIKeyVerifier(path: path)
        #expect((try? verifier.authenticate(key).get()) != nil)
        let id = try verifier.authenticate(key).get().id
        var edited = try APIKeysFile.load(path)
        let found = edited.revoke(id)
        #expect(found)
        try edited.save(path)
        let revoked = ContinuousClock.now
        var refusedAfter: Duration?
        while ContinuousClock.now - revoked < .seconds(3) {
            if case .failure = verifier.authenticate(key) {
                refusedAfter = ContinuousClock.now - revoked
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let after = try #require(refusedAfter, "the revoked key was still accepted after 3 s")
        #expect(after < .seconds(1))
        #expect((try? verifier.authenticate(other).get()) != nil, "other keys stay valid")
    }

    @Test func scopesIncludeTheOnesBelow() {
        #expect(KeyScope.admin >= .write && KeyScope.write >= .read && !(KeyScope.read >= .write))
    }
}

@Suite struct CertificateTests {
    @Test func identitiesRoundTripThroughTheirURI() {
        let identity = PeerIdentity(role: .node, id: "node-1")
        #expect(identity.uri == "sparrow://node/node-1")
        #expect(PeerIdentity(uri: identity.uri) == identity)
        for bad in ["sparrow://root/x", "sparrow://node/", "https://node/x", "sparrow://node/a b", "sparrow://node"] {
            #expect(PeerIdentity(uri: bad) == nil, "\(bad)")
        }
    }

    @Test func anIssuedCertificateNamesItsIdentityAndChainsToTheCA() throws {
        let directory = NSTemporaryDirectory() + "sparrow-ca-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ca = try CertificateAuthority.create()
        try ca.save(certificatePath: directory + "/ca.pem", keyPath: directory + "/ca.key")
        let loaded = try CertificateAuthority.load(certificatePath: directory + "/ca.pem", keyPath: directory + "/ca.key")
        let issued = try loaded.issue(PeerIdentity(role: .coordinator, id: "coord-a"), hosts: ["127.0.0.1", "coord.example"], days: 30)
        #expect(issued.certificate.sparrowIdentity == PeerIdentity(role: .coordinator, id: "coord-a"))
        #expect(issued.certificate.issuer == ca.certificate.subject)
        #expect(issued.certificate.notValidAfter <= Date().addingTimeInterval(31 * 86_400))
        var info = stat()
        #expect(stat(directory + "/ca.key", &info) == 0 && info.st_mode & 0o077 == 0)
    }

    @Test func aKeyThatIsNotTheCAsIsRefused() throws {
        let directory = NSTemporaryDirectory() + "sparrow-ca-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try CertificateAuthority.create().save(certificatePath: directory + "/ca.pem", keyPath: directory + "/ca.key")
        try CertificateAuthority.create().save(certificatePath: directory + "/other.pem", keyPath: directory + "/other.key")
        #expect(throws: SecurityError.self) { try CertificateAuthority.load(certificatePath: directory + "/ca.pem", keyPath: directory + "/other.key") }
    }
}
