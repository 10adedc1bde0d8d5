import Foundation

/// The WordPiece vocabulary: token string ↔ id.
public struct Vocabulary: Sendable {
    /// Token strings by id.
    public let tokens: [String]
    private let ids: [String: Int32]

    /// Builds a vocabulary from tokens in id order.
    public init(tokens: [String]) {
        self.tokens = tokens
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (index, token) in tokens.enumerated() where ids[token] == nil {
            ids[token] = Int32(index)
        }
        self.ids = ids
    }

    /// Number of ids.
    public var count: Int { tokens.count }

    /// The id of `token`, if it is in the vocabulary.
    public func id(_ token: String) -> Int32? { ids[token] }

    /// The token string of `id`, if it is in range.
    public func token(_ id: Int32) -> String? {
        id >= 0 && Int(id) < tokens.count ? tokens[Int(id)] : nil
    }

    /// Reads a `vocab.txt` (one token per line, line number = id).
    public static func load(vocabTxt path: String) throws -> Vocabulary {
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8)
        else {
            throw EncoderError.missingFile(path: path, reason: "unreadable or not UTF-8")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0.hasSuffix("\r") ? $0.dropLast() : $0)
        }
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else {
            throw EncoderError.invalidTokenizer(path: path, reason: "vocabulary is empty")
        }
        return Vocabulary(tokens: lines)
    }

    /// Builds the vocabulary from a `{token: id}` map, checking ids are dense from 0.
    static func fromMap(_ map: [String: Int], path: String) throws -> Vocabulary {
        var tokens = [String?](repeating: nil, count: map.count)
        for (token, id) in map {
            guard id >= 0 && id < map.count, tokens[id] == nil else {
                throw EncoderError.invalidTokenizer(path: path, reason: "vocabulary ids are not dense 0..<\(map.count) (token '\(token)' has id \(id))")
            }
            tokens[id] = token
        }
        return Vocabulary(tokens: tokens.map { $0! })
    }
}
