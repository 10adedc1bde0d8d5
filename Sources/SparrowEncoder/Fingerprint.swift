import Foundation

/// Content fingerprints (64-bit FNV-1a, hex) so an index can tell which encoder built it.
enum Fingerprint {
    /// Hashes the model folder's config, tokenizer and weights files with `settings`.
    static func modelFolder(_ directory: String, settings: String) throws -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for name in ["config.json", "tokenizer.json", "vocab.txt", "model.safetensors"] {
            let path = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: path) else { continue }
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
                throw EncoderError.missingFile(path: path, reason: "unreadable")
            }
            mix(&hash, Data(name.utf8))
            mix(&hash, data)
        }
        mix(&hash, Data(settings.utf8))
        return String(hash, radix: 16)
    }

    private static func mix(_ hash: inout UInt64, _ data: Data) {
        data.withUnsafeBytes { bytes in
            for byte in bytes {
                hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            }
        }
    }
}
