import Crypto
import Foundation
import Synchronization

/// What an API key allows. Each scope includes the ones below it: `admin` ⊇ `write` ⊇ `read`.
public enum KeyScope: String, Sendable, Codable, Comparable, CaseIterable {
    /// Searches and the cluster map.
    case read
    /// Also online writes (upserts and deletes).
    case write
    /// Also loads, moves, node changes and every other control call.
    case admin

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// One API key as the keys file keeps it: never the key itself, only a salted SHA-256 of its
/// secret. Keys carry 256 random bits, so a fast hash is enough: there is nothing to guess.
public struct APIKeyRecord: Sendable, Codable, Equatable {
    /// Public: the part of the key before the dot, shown in logs and `keys list`.
    public var id: String
    public var name: String
    public var scope: KeyScope
    public var salt: String
    public var hash: String
    public var created: String
    /// When it was revoked (nil: in force).
    public var revoked: String?
}

/// The keys file (JSON, mode 0600): `{"keys": [APIKeyRecord…]}`. `sparrow keys` edits it;
/// servers read it and notice changes within `APIKeyVerifier.recheckInterval`.
public struct APIKeysFile: Sendable, Codable, Equatable {
    public var keys: [APIKeyRecord] = []

    public init(keys: [APIKeyRecord] = []) {
        self.keys = keys
    }

    /// The file at `path`; an absent file holds no keys.
    public static func load(_ path: String) throws -> APIKeysFile {
        guard FileManager.default.fileExists(atPath: path) else { return APIKeysFile() }
        let text = try SecurityFiles.read(path)
        do {
            let file = try JSONDecoder().decode(APIKeysFile.self, from: Data(text.utf8))
            for (index, key) in file.keys.enumerated() where !APIKey.isValidID(key.id) {
                throw SecurityError.badFile(path, "keys[\(index)].id '\(key.id)' is not a key id (12 hex digits)")
            }
            return file
        } catch let error as SecurityError {
            throw error
        } catch {
            throw SecurityError.badFile(path, "not a keys file: \(error)")
        }
    }

    public func save(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try SecurityFiles.write(String(decoding: try encoder.encode(self), as: UTF8.self) + "\n", to: path, private: true)
    }

    /// Adds a new key; returns the key to hand to its user (shown once, never stored).
    public mutating func create(name: String, scope: KeyScope, now: Date = Date()) -> String {
        var id: String
        repeat { id = APIKey.hex(APIKey.random(6)) } while keys.contains { $0.id == id }
        let secret = APIKey.base64url(APIKey.random(32))
        let salt = APIKey.random(16)
        keys.append(APIKeyRecord(
            id: id, name: name, scope: scope, salt: APIKey.hex(salt), hash: APIKey.hex(APIKey.digest(salt: salt, secret: secret)),
            created: ISO8601DateFormatter().string(from: now), revoked: nil))
        return "\(APIKey.prefix)\(id).\(secret)"
    }

    /// Marks key `id` revoked; false when there is no such key.
    public mutating func revoke(_ id: String, now: Date = Date()) -> Bool {
        guard let index = keys.firstIndex(where: { $0.id == id }) else { return false }
        if keys[index].revoked == nil { keys[index].revoked = ISO8601DateFormatter().string(from: now) }
        return true
    }
}

/// The form of a key: `spk_<id>.<secret>`, id 12 hex digits, secret 43 base64url characters.
public enum APIKey {
    public static let prefix = "spk_"

    static func isValidID(_ id: String) -> Bool { id.utf8.count == 12 && id.utf8.allSatisfy { ("0"..."9").contains(Character(UnicodeScalar($0))) || ("a"..."f").contains(Character(UnicodeScalar($0))) } }

    /// The id and secret of a presented key, or nil when it does not have the form.
    static func split(_ key: String) -> (id: String, secret: String)? {
        guard key.hasPrefix(prefix), key.utf8.count <= 128 else { return nil }
        let body = key.dropFirst(prefix.count)
        guard let dot = body.firstIndex(of: ".") else { return nil }
        let id = String(body[..<dot])
        guard isValidID(id) else { return nil }
        return (id, String(body[body.index(after: dot)...]))
    }

    static func digest(salt: [UInt8], secret: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: salt)
        hasher.update(data: Array(secret.utf8))
        return Array(hasher.finalize())
    }

    static func random(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func unhex(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: utf8.count, by: 2) {
            guard let byte = UInt8(String(decoding: utf8[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Equal bytes, compared in time that depends only on the lengths.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// A key that authenticated: its id (for logs and audit) and scope.
public struct AuthenticatedKey: Sendable, Equatable {
    public var id: String
    public var name: String
    public var scope: KeyScope
}

/// Checks presented API keys against the keys file, rereading it when it changes (checked at
/// most every `recheckInterval`, on the next check after that), so a revoked key is refused
/// within that interval without a restart. A file that becomes unreadable keeps the last good
/// set in force and is reported through `onReloadError`.
public final class APIKeyVerifier: Sendable {
    public static let recheckInterval: Duration = .milliseconds(250)

    public let path: String
    /// A key of the file, its salt and hash decoded once.
    private struct Entry {
        var record: APIKeyRecord
        var salt: [UInt8]
        var hash: [UInt8]
    }
    private struct State {
        var keys: [String: Entry]
        var signature: FileSignature?
        var checked: ContinuousClock.Instant
    }
    private let state: Mutex<State>
    private let onReloadError: @Sendable (SecurityError) -> Void

    public init(path: String, onReloadError: @escaping @Sendable (SecurityError) -> Void = { _ in }) throws {
        self.path = path
        self.onReloadError = onReloadError
        state = Mutex(State(keys: try Self.entries(path), signature: FileSignature(path), checked: .now))
    }

    private static func entries(_ path: String) throws -> [String: Entry] {
        var entries: [String: Entry] = [:]
        for (index, record) in try APIKeysFile.load(path).keys.enumerated() {
            guard let salt = APIKey.unhex(record.salt), let hash = APIKey.unhex(record.hash) else {
                throw SecurityError.badFile(path, "keys[\(index)] (\(record.id)): salt and hash must be hex")
            }
            entries[record.id] = Entry(record: record, salt: salt, hash: hash)
        }
        return entries
    }

    /// The key, or why it is refused (a message fit for the caller: it never tells which part was wrong).
    public func authenticate(_ presented: String) -> Result<AuthenticatedKey, SecurityError> {
        refreshIfDue()
        guard let (id, secret) = APIKey.split(presented) else { return .failure(.invalid("the API key is malformed")) }
        guard let entry = state.withLock({ $0.keys[id] }), APIKey.constantTimeEqual(APIKey.digest(salt: entry.salt, secret: secret), entry.hash)
        else { return .failure(.invalid("the API key is not valid")) }
        guard entry.record.revoked == nil else { return .failure(.invalid("API key \(id) was revoked")) }
        return .success(AuthenticatedKey(id: entry.record.id, name: entry.record.name, scope: entry.record.scope))
    }

    private func refreshIfDue() {
        let now = ContinuousClock.now
        let due = state.withLock { state -> Bool in
            guard now - state.checked >= Self.recheckInterval else { return false }
            state.checked = now
            return true
        }
        guard due else { return }
        let signature = FileSignature(path)
        guard signature != state.withLock({ $0.signature }) else { return }
        do {
            let keys = try Self.entries(path)
            state.withLock {
                $0.keys = keys
                $0.signature = signature
            }
        } catch let error as SecurityError {
            onReloadError(error)
        } catch {
            onReloadError(.badFile(path, "\(error)"))
        }
    }
}

/// What tells one version of a file from the next: inode, size and modification time.
struct FileSignature: Equatable {
    var inode: UInt64
    var size: Int64
    var modified: Int64

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }
}
