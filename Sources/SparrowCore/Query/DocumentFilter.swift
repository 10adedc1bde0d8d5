/// A set of internal document ids as a bitmap: which documents a query may return
/// (a stored-field filter, or everything not deleted).
public struct DocumentFilter: Sendable, Equatable {
    private var words: [UInt64]

    /// A filter over `count` documents, all allowed or none.
    public init(count: Int, allowed: Bool) {
        words = [UInt64](repeating: allowed ? ~0 : 0, count: (count + 63) / 64)
    }

    @inline(__always)
    public func contains(_ doc: UInt32) -> Bool {
        let word = Int(doc >> 6)
        return word < words.count && words[word] & (1 << UInt64(doc & 63)) != 0
    }

    /// Runs `body` with the bitmap's words (bit `doc & 63` of word `doc >> 6`), for loops that
    /// must not retain the filter's storage once per document (`DocumentFilter.contains(_:in:)`).
    public func withUnsafeWords<R>(_ body: (UnsafeBufferPointer<UInt64>) throws -> R) rethrows -> R {
        try words.withUnsafeBufferPointer(body)
    }

    @inline(__always)
    public static func contains(_ doc: UInt32, in words: UnsafeBufferPointer<UInt64>) -> Bool {
        let word = Int(doc >> 6)
        return word < words.count && words[word] & (1 << UInt64(doc & 63)) != 0
    }

    public mutating func insert(_ doc: UInt32) {
        let word = Int(doc >> 6)
        if word >= words.count { words.append(contentsOf: repeatElement(0, count: word - words.count + 1)) }
        words[word] |= 1 << UInt64(doc & 63)
    }

    public mutating func remove(_ doc: UInt32) {
        let word = Int(doc >> 6)
        if word < words.count { words[word] &= ~(1 << UInt64(doc & 63)) }
    }

    /// Documents allowed by both filters.
    public func intersection(_ other: DocumentFilter) -> DocumentFilter {
        var result = self
        for i in result.words.indices { result.words[i] &= i < other.words.count ? other.words[i] : 0 }
        return result
    }
}
