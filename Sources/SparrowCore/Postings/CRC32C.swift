/// CRC-32C (Castagnoli), table-driven; guards every stored block against silent corruption.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// The checksum of `bytes`.
    public static func checksum<C: Collection<UInt8>>(_ bytes: C) -> UInt32 {
        extend(0, bytes)
    }

    /// The checksum of the bytes behind `checksum` followed by `bytes`: `extend(checksum(a), b)`
    /// equals `checksum(a + b)`, so long inputs can be checked piece by piece.
    public static func extend<C: Collection<UInt8>>(_ checksum: UInt32, _ bytes: C) -> UInt32 {
        // Unspecialized across modules, a generic collection costs a witness call per byte:
        // take contiguous storage when there is one (arrays and slices always have it).
        if let crc = bytes.withContiguousStorageIfAvailable({ extend(checksum, UnsafeRawBufferPointer($0)) }) { return crc }
        return Array(bytes).withUnsafeBytes { extend(checksum, $0) }
    }

    public static func extend(_ checksum: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = checksum ^ 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
