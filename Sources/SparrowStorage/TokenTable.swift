/// The tokens of one build, numbered: a model's vocabulary (id = vocabulary id), or the tokens
/// of a vectors file in the order first seen. Looking a token up by its UTF-8 bytes allocates
/// nothing (an open-addressing table of FNV-1a hashes), since a build does it once per posting.
public final class TokenTable {
    public private(set) var tokens: [String] = []
    private var bytes: [[UInt8]] = []
    private var slots: [Int32]
    private var mask: Int

    public init(capacity: Int = 1 << 15) {
        var size = 1
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    /// A table holding `tokens` with ids `0..<tokens.count` (a vocabulary; names may repeat,
    /// the first one wins a lookup).
    public convenience init(tokens: [String]) {
        self.init(capacity: tokens.count)
        for token in tokens { add(Array(token.utf8), text: token) }
    }

    public var count: Int { tokens.count }

    /// The id of the token spelled by `name`, or nil.
    public func id(of name: UnsafeBufferPointer<UInt8>) -> UInt32? {
        var slot = Self.hash(name) & mask
        while slots[slot] >= 0 {
            let id = Int(slots[slot])
            if bytes[id].withUnsafeBufferPointer({ $0.elementsEqual(name) }) { return UInt32(id) }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// The id of `name`, added when new.
    public func intern(_ name: UnsafeBufferPointer<UInt8>) -> UInt32 {
        if let id = id(of: name) { return id }
        return add(Array(name), text: String(decoding: name, as: UTF8.self))
    }

    @discardableResult
    private func add(_ name: [UInt8], text: String) -> UInt32 {
        let id = tokens.count
        tokens.append(text)
        bytes.append(name)
        if tokens.count * 2 > slots.count { rehash() } else { place(id) }
        return UInt32(id)
    }

    private func place(_ id: Int) {
        var slot = bytes[id].withUnsafeBufferPointer(Self.hash) & mask
        while slots[slot] >= 0 {
            if bytes[Int(slots[slot])] == bytes[id] { return }   // a repeated name: the first id keeps it
            slot = (slot + 1) & mask
        }
        slots[slot] = Int32(id)
    }

    private func rehash() {
        slots = [Int32](repeating: -1, count: slots.count * 2)
        mask = slots.count - 1
        for id in bytes.indices { place(id) }
    }

    private static func hash(_ name: UnsafeBufferPointer<UInt8>) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: hash ^ (hash >> 29))
    }
}
