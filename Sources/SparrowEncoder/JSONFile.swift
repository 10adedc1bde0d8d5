import Foundation

/// Reads small JSON configuration files with errors that name the file.
enum JSONFile {
    static func object(at path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EncoderError.missingFile(path: path, reason: "file is missing or unreadable")
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw EncoderError.invalidJSON(path: path, reason: "\(error.localizedDescription)")
        }
        guard let object = parsed as? [String: Any] else {
            throw EncoderError.invalidJSON(path: path, reason: "top level is not an object")
        }
        return object
    }
}
