import CZlib
import Foundation

/// An output file that appears under its final name only when complete: bytes go to a
/// temporary file beside it, which `commit()` renames into place. If the writer is dropped
/// or fails before `commit()`, the temporary file is removed and nothing is left behind. The
/// temporary name is unique per writer (process id and a random part: processes in separate
/// containers on one shared volume may have the same process id).
/// A path ending in `.gz` is gzip-compressed.
public final class AtomicOutputFile {
    public let path: String
    private let temporaryPath: String
    private var plain: UnsafeMutablePointer<FILE>?
    private var compressed: gzFile?
    private var committed = false

    public init(path: String) throws {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        temporaryPath = ((directory.isEmpty ? "." : directory) as NSString)
            .appendingPathComponent(".\(name).partial-\(getpid())-\(String(UInt32.random(in: .min ... .max), radix: 16))")
        if path.hasSuffix(".gz") {
            guard let file = gzopen(temporaryPath, "wb6") else {
                throw IOError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
            }
            gzbuffer(file, 1 << 17)
            compressed = file
        } else {
            guard let file = fopen(temporaryPath, "wb") else {
                throw IOError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
            }
            plain = file
        }
    }

    deinit {
        if !committed {
            close()
            unlink(temporaryPath)
        }
    }

    /// Appends `text` as UTF-8.
    public func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Appends `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        if let compressed {
            guard gzwrite(compressed, bytes.baseAddress!, UInt32(bytes.count)) == Int32(bytes.count) else {
                var code: Int32 = 0
                throw IOError.writeFailed(path: path, reason: String(cString: gzerror(compressed, &code)))
            }
        } else if let plain {
            guard fwrite(bytes.baseAddress!, 1, bytes.count, plain) == bytes.count else {
                throw IOError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
        }
    }

    /// Writes `text` to `path` through a synced temporary file and a rename.
    public static func write(_ text: String, to path: String) throws {
        let file = try AtomicOutputFile(path: path)
        try file.write(text)
        try file.commit()
    }

    /// Flushes, syncs and renames the file into place, then syncs the directory so that the
    /// rename itself survives a crash.
    public func commit() throws {
        if let plain {
            guard fflush(plain) == 0, fsync(fileno(plain)) == 0 else {
                throw IOError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
        }
        guard close() else { throw IOError.writeFailed(path: path, reason: "close failed") }
        guard rename(temporaryPath, path) == 0 else {
            throw IOError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
        committed = true
        let directory = (path as NSString).deletingLastPathComponent
        if let handle = opendir(directory.isEmpty ? "." : directory) {
            fsync(dirfd(handle))
            closedir(handle)
        }
    }

    @discardableResult
    private func close() -> Bool {
        var ok = true
        if let compressed { ok = gzclose(compressed) == Z_OK }
        if let plain { ok = fclose(plain) == 0 && ok }
        compressed = nil
        plain = nil
        return ok
    }
}
