import Foundation

/// Why a security file or setting cannot be used: names the file or the option, and what was expected.
public enum SecurityError: Error, Equatable, CustomStringConvertible {
    case badFile(String, String)
    case invalid(String)

    public var description: String {
        switch self {
        case .badFile(let path, let reason): "\(path): \(reason)"
        case .invalid(let reason): reason
        }
    }
}

/// Reading and writing key material: private files are created with mode 0600 and replaced
/// atomically, so that no reader ever sees half a key.
public enum SecurityFiles {
    public static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw SecurityError.badFile(path, "cannot read the file") }
        guard let text = String(data: data, encoding: .utf8) else { throw SecurityError.badFile(path, "not UTF-8 text") }
        return text
    }

    public static func write(_ text: String, to path: String, private isPrivate: Bool) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let temporary = path + ".partial-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, isPrivate ? 0o600 : 0o644)
        guard fd >= 0 else { throw SecurityError.badFile(temporary, "cannot create (\(String(cString: strerror(errno))))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw SecurityError.badFile(path, "cannot write (\(String(cString: strerror(errno))))")
        }
    }
}
