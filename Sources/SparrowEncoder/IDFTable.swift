import Foundation
import SparrowCore

/// Per-token query weights for inference-free queries; tokens the table lacks weigh 1.0.
public struct IDFTable: Sendable, Equatable {
    /// Weight by token id.
    public let weights: [Float]

    public init(weights: [Float]) {
        self.weights = weights
    }

    /// The weight of token `id` (1.0 outside the table).
    public subscript(id: Int32) -> Float {
        id >= 0 && Int(id) < weights.count ? weights[Int(id)] : 1
    }

    /// Loads an `idf.json` (`{token: weight}`) against `vocabulary`.
    /// Tokens absent from the vocabulary cannot occur in a query and are ignored.
    public static func load(path: String, vocabulary: Vocabulary) throws -> IDFTable {
        let json = try JSONFile.object(at: path)
        var weights = [Float](repeating: 1, count: vocabulary.count)
        for (token, value) in json {
            guard let number = value as? NSNumber else {
                throw EncoderError.invalidJSON(path: path, reason: "weight of token '\(token)' is not a number")
            }
            if let id = vocabulary.id(token) { weights[Int(id)] = number.floatValue }
        }
        return IDFTable(weights: weights)
    }

    /// Writes the table as `{token: weight}` JSON (every vocabulary token, in id order).
    public func jsonData(vocabulary: Vocabulary) -> Data {
        var out = "{"
        for (index, token) in vocabulary.tokens.enumerated() {
            if index > 0 { out += ", " }
            out += JSONText.quoted(token) + ": " + "\(self[Int32(index)])"
        }
        out += "}\n"
        return Data(out.utf8)
    }
}

/// Counts document frequencies over a corpus and turns them into BM25-style IDF:
/// `ln(1 + (N − df + 0.5) / (df + 0.5))` over the distinct non-special token ids of each document.
public struct IDFCounter: Sendable {
    public private(set) var documentFrequency: [Int]
    public private(set) var documents = 0
    private let special: Set<Int32>

    public init(vocabularySize: Int, special: [Int32]) {
        documentFrequency = [Int](repeating: 0, count: vocabularySize)
        self.special = Set(special)
    }

    /// Counts one document's token ids (repeats and special tokens are ignored).
    public mutating func add(tokens: [Int32]) {
        documents += 1
        for id in Set(tokens) where !special.contains(id) && Int(id) < documentFrequency.count {
            documentFrequency[Int(id)] += 1
        }
    }

    /// Adds the counts of `documents` documents counted elsewhere (a stored work batch).
    public mutating func add(documents: Int, frequencies: [Int]) {
        precondition(frequencies.count == documentFrequency.count, "frequencies over another vocabulary")
        self.documents += documents
        for i in documentFrequency.indices { documentFrequency[i] += frequencies[i] }
    }

    /// Adds another counter's counts (for parallel or sliced builds).
    public mutating func merge(_ other: IDFCounter) {
        add(documents: other.documents, frequencies: other.documentFrequency)
    }

    /// The IDF table of the documents counted so far.
    public var table: IDFTable {
        let n = Double(documents)
        return IDFTable(weights: documentFrequency.map { df in
            Float(Foundation.log(1 + (n - Double(df) + 0.5) / (Double(df) + 0.5)))
        })
    }
}
