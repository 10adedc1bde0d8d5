import Foundation

/// BERT WordPiece tokenization, identical to Hugging Face's `BertTokenizerFast`:
/// special-token literals matched in the raw text, `BertNormalizer`, whitespace and
/// punctuation pre-tokenization, greedy longest-match WordPiece with a continuation
/// prefix, `[CLS] … [SEP]` and truncation.
public struct WordPieceTokenizer: Sendable {
    /// The ids every BERT-style model reserves.
    public struct SpecialTokens: Sendable, Equatable {
        public var pad: Int32
        public var unk: Int32
        public var cls: Int32
        public var sep: Int32
        public var mask: Int32

        /// All five, for zeroing in pooled vectors.
        public var all: [Int32] { [pad, unk, cls, sep, mask] }
    }

    public let vocabulary: Vocabulary
    public let normalizer: BertNormalizer
    public let special: SpecialTokens
    /// Literal strings (such as `[CLS]`) that map straight to an id wherever they appear.
    public let addedTokens: [(content: String, id: Int32)]
    public let continuingPrefix: String
    public let maxInputCharsPerWord: Int
    /// Maximum sequence length including `[CLS]` and `[SEP]`.
    public let maxLength: Int

    private let addedByFirstScalar: [Unicode.Scalar: [(scalars: [Unicode.Scalar], id: Int32)]]

    public init(
        vocabulary: Vocabulary,
        normalizer: BertNormalizer = BertNormalizer(),
        special: SpecialTokens,
        addedTokens: [(content: String, id: Int32)],
        continuingPrefix: String = "##",
        maxInputCharsPerWord: Int = 100,
        maxLength: Int = 512
    ) {
        self.vocabulary = vocabulary
        self.normalizer = normalizer
        self.special = special
        self.addedTokens = addedTokens
        self.continuingPrefix = continuingPrefix
        self.maxInputCharsPerWord = maxInputCharsPerWord
        self.maxLength = maxLength
        var byFirst: [Unicode.Scalar: [(scalars: [Unicode.Scalar], id: Int32)]] = [:]
        for token in addedTokens {
            let scalars = Array(token.content.unicodeScalars)
            guard let first = scalars.first else { continue }
            byFirst[first, default: []].append((scalars, token.id))
        }
        for key in byFirst.keys {
            byFirst[key]!.sort { $0.scalars.count > $1.scalars.count }
        }
        addedByFirstScalar = byFirst
    }

    /// Token ids of `text` with `[CLS]`/`[SEP]`, truncated to `maxLength`.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [special.cls]
        let budget = maxLength - 2
        appendTokens(of: text, to: &ids, limit: budget + 1)
        ids.append(special.sep)
        return ids
    }

    /// Token ids of `text` without special tokens and without truncation.
    public func tokenize(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        appendTokens(of: text, to: &ids, limit: Int.max)
        return ids
    }

    /// Appends ids until `ids.count` reaches `limit`.
    private func appendTokens(of text: String, to ids: inout [Int32], limit: Int) {
        let scalars = Array(text.unicodeScalars)
        var segmentStart = 0
        var index = 0
        while index < scalars.count && ids.count < limit {
            if let candidates = addedByFirstScalar[scalars[index]],
               let match = candidates.first(where: { Self.hasPrefix(scalars, at: index, $0.scalars) }) {
                appendNormalized(scalars[segmentStart..<index], to: &ids, limit: limit)
                if ids.count < limit { ids.append(match.id) }
                index += match.scalars.count
                segmentStart = index
            } else {
                index += 1
            }
        }
        if ids.count < limit {
            appendNormalized(scalars[segmentStart..<scalars.count], to: &ids, limit: limit)
        }
    }

    private static func hasPrefix(_ scalars: [Unicode.Scalar], at start: Int, _ prefix: [Unicode.Scalar]) -> Bool {
        guard start + prefix.count <= scalars.count else { return false }
        for offset in 0..<prefix.count where scalars[start + offset] != prefix[offset] {
            return false
        }
        return true
    }

    private func appendNormalized(_ raw: ArraySlice<Unicode.Scalar>, to ids: inout [Int32], limit: Int) {
        guard !raw.isEmpty else { return }
        let normalized = normalizer.normalize(scalars: raw)
        var wordStart = 0
        for (index, scalar) in normalized.enumerated() {
            if BertNormalizer.isWhitespace(scalar) {
                appendWord(normalized[wordStart..<index], to: &ids)
                wordStart = index + 1
            } else if Self.isPunctuation(scalar) {
                appendWord(normalized[wordStart..<index], to: &ids)
                appendWord(normalized[index..<index + 1], to: &ids)
                wordStart = index + 1
            }
            if ids.count >= limit { break }
        }
        if ids.count < limit { appendWord(normalized[wordStart..<normalized.count], to: &ids) }
        if ids.count > limit { ids.removeLast(ids.count - limit) }
    }

    /// Greedy longest-match-first WordPiece of one pre-token; the whole word is `[UNK]`
    /// when it is too long or some piece of it is not in the vocabulary.
    private func appendWord(_ word: ArraySlice<Unicode.Scalar>, to ids: inout [Int32]) {
        guard !word.isEmpty else { return }
        guard word.count <= maxInputCharsPerWord else {
            ids.append(special.unk)
            return
        }
        var pieces: [Int32] = []
        var start = word.startIndex
        while start < word.endIndex {
            var end = word.endIndex
            var found: Int32?
            while start < end {
                var view = String.UnicodeScalarView()
                if start > word.startIndex { view.append(contentsOf: continuingPrefix.unicodeScalars) }
                view.append(contentsOf: word[start..<end])
                if let id = vocabulary.id(String(view)) {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                ids.append(special.unk)
                return
            }
            pieces.append(id)
            start = end
        }
        ids.append(contentsOf: pieces)
    }

    /// ASCII punctuation (which includes `$ + < = > ^ \` | ~`) or Unicode category P*.
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        if scalar.isASCII { return false }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }
}
