import Foundation
import SparrowCore

/// Content fingerprints (64-bit FNV-1a, hex) so an index can tell which encoder built it.
enum Fingerprint {
    /// Hashes the model folder's config, tokenizer and weights files with `settings`.
    static func modelFolder(_ directory: String, settings: String) throws -> String {
        var hash = FNV1a()
        for name in ["config.json", "tokenizer.json", "vocab.txt", "model.safetensors"] {
            let path = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: path) else { continue }
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
                throw EncoderError.missingFile(path: path, reason: "unreadable")
            }
            hash.add(name)
            data.withUnsafeBytes { hash.add($0) }
        }
        hash.add(settings)
        return hash.hex
    }
}

extension QueryEncoder {
    /// Identifies how text becomes token ids: the vocabulary, in id order, and the normalizer.
    public var tokenizerFingerprint: String {
        var hash = FNV1a()
        for token in tokenizer.vocabulary.tokens {
            hash.add(token)
            hash.add([0])
        }
        let normalizer = tokenizer.normalizer
        hash.add("lowercase=\(normalizer.lowercase) accents=\(String(describing: normalizer.stripAccents)) chinese=\(normalizer.handleChineseChars)")
        return hash.hex
    }

    /// Identifies the query weights: every token's IDF weight, by id.
    public var idfFingerprint: String {
        var hash = FNV1a()
        for weight in idf.weights { withUnsafeBytes(of: weight.bitPattern.bigEndian) { hash.add($0) } }
        return hash.hex
    }
}
