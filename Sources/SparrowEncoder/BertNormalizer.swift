import Foundation

/// Text normalization of Hugging Face's `BertNormalizer` (tokenizers crate), scalar for scalar:
/// clean text → isolate CJK ideographs → strip accents (NFD, drop Mn) → lower-case.
public struct BertNormalizer: Sendable, Equatable {
    public var cleanText = true
    public var handleChineseChars = true
    public var lowercase = true
    /// `nil` follows `lowercase`, as in Hugging Face.
    public var stripAccents: Bool? = nil

    public init(cleanText: Bool = true, handleChineseChars: Bool = true, lowercase: Bool = true, stripAccents: Bool? = nil) {
        self.cleanText = cleanText
        self.handleChineseChars = handleChineseChars
        self.lowercase = lowercase
        self.stripAccents = stripAccents
    }

    /// Normalizes `text` into a scalar array ready for pre-tokenization.
    public func normalize(_ text: String) -> [Unicode.Scalar] {
        normalize(scalars: text.unicodeScalars)
    }

    /// Normalizes a scalar sequence into a scalar array ready for pre-tokenization.
    public func normalize<S: Sequence<Unicode.Scalar>>(scalars input: S) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(input.underestimatedCount + 8)
        var isASCII = true
        for scalar in input {
            if cleanText {
                if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
                if Self.isWhitespace(scalar) {
                    scalars.append(" ")
                    continue
                }
            }
            if handleChineseChars && Self.isChineseChar(scalar) {
                scalars.append(" ")
                scalars.append(scalar)
                scalars.append(" ")
            } else {
                scalars.append(scalar)
            }
            if !scalar.isASCII { isASCII = false }
        }
        if stripAccents ?? lowercase, !isASCII {
            scalars = Self.stripAccents(scalars)
        }
        if lowercase {
            scalars = Self.lowercased(scalars, isASCII: isASCII)
        }
        return scalars
    }

    /// Canonical decomposition (NFD), then removal of non-spacing marks (category Mn).
    static func stripAccents(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        let decomposed = String(view).decomposedStringWithCanonicalMapping
        return decomposed.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
    }

    /// Per-scalar full lower-case mapping (no context, as Rust's `char::to_lowercase`).
    static func lowercased(_ scalars: [Unicode.Scalar], isASCII: Bool) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(scalars.count)
        for scalar in scalars {
            if scalar.isASCII {
                let v = scalar.value
                result.append(v >= 65 && v <= 90 ? Unicode.Scalar(v + 32)! : scalar)
            } else if scalar.properties.changesWhenLowercased {
                result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                result.append(scalar)
            }
        }
        return result
    }

    /// Tab, newline and carriage return count as whitespace, not control.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "\t", "\n", "\r": return false
        default:
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned: return true
            default: return false
            }
        }
    }

    /// Unicode White_Space, as Rust's `char::is_whitespace`.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "\t", "\n", "\r", " ": return true
        default: return !scalar.isASCII && scalar.properties.isWhitespace
        }
    }

    /// The CJK Unified Ideograph blocks that BERT isolates as single words.
    static func isChineseChar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
