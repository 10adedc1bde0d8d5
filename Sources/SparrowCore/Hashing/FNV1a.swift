/// 64-bit FNV-1a: a stable hash (the same on every machine and in every Swift version,
/// unlike `Hasher`, which is seeded per process) for shard assignment and fingerprints.
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add<S: Sequence<UInt8>>(_ bytes: S) {
        // Unspecialized across modules, iterating a generic sequence costs a witness call per
        // byte: take contiguous storage when there is one (arrays, slices, UTF-8 views).
        if bytes.withContiguousStorageIfAvailable({ add(UnsafeRawBufferPointer($0)) }) != nil { return }
        for byte in bytes { mix(byte) }
    }

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes { mix(byte) }
    }

    @inline(__always)
    private mutating func mix(_ byte: UInt8) {
        value ^= UInt64(byte)
        value &*= 0x0000_0100_0000_01b3
    }

    public mutating func add(_ text: String) {
        var text = text
        text.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }

    /// The hash as 16 hex digits.
    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
