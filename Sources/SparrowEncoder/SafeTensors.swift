import Foundation

/// A reader of the safetensors format: an 8-byte little-endian header length, a JSON header
/// `{name: {"dtype", "shape", "data_offsets": [begin, end]}}`, then the raw tensor bytes.
/// Every range is checked against the file before it is read.
public struct SafeTensors: Sendable {
    /// Element types Sparrow reads; all are widened to `Float`.
    public enum DType: String, Sendable {
        case f32 = "F32"
        case f16 = "F16"
        case bf16 = "BF16"

        var byteCount: Int { self == .f32 ? 4 : 2 }
    }

    /// Where one tensor lives in the file.
    public struct Entry: Sendable {
        public let dtype: String
        public let shape: [Int]
        let begin: Int
        let end: Int
    }

    public let path: String
    public let entries: [String: Entry]
    private let data: Data
    private let dataStart: Int

    /// Opens and validates `path` (memory-mapped).
    public init(path: String) throws {
        self.path = path
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw EncoderError.missingFile(path: path, reason: error.localizedDescription)
        }
        guard data.count >= 8 else {
            throw EncoderError.invalidSafetensors(path: path, reason: "file is \(data.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw EncoderError.invalidSafetensors(path: path, reason: "header length \(headerLength) exceeds the file size \(data.count) (truncated file?)")
        }
        let headerData = data.subdata(in: 8..<(8 + Int(headerLength)))
        guard let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw EncoderError.invalidSafetensors(path: path, reason: "header is not a JSON object")
        }
        let dataStart = 8 + Int(headerLength)
        let available = data.count - dataStart
        var entries: [String: Entry] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let spec = value as? [String: Any],
                  let dtype = spec["dtype"] as? String,
                  let shape = spec["shape"] as? [Int],
                  let offsets = spec["data_offsets"] as? [Int], offsets.count == 2
            else {
                throw EncoderError.invalidSafetensors(path: path, reason: "tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end else {
                throw EncoderError.invalidSafetensors(path: path, reason: "tensor '\(name)' has invalid data_offsets \(offsets)")
            }
            guard end <= available else {
                throw EncoderError.invalidSafetensors(path: path, reason: "tensor '\(name)' ends at byte \(end) but the data section has \(available) bytes (truncated file?)")
            }
            if let known = DType(rawValue: dtype) {
                let expected = shape.reduce(1, *) * known.byteCount
                guard end - begin == expected else {
                    throw EncoderError.invalidSafetensors(path: path, reason: "tensor '\(name)' has \(end - begin) bytes, expected \(expected) for \(dtype) \(shape)")
                }
            }
            entries[name] = Entry(dtype: dtype, shape: shape, begin: begin, end: end)
        }
        self.data = data
        self.dataStart = dataStart
        self.entries = entries
    }

    /// Reads tensor `name` as `Float`s, checking its shape.
    public func floats(_ name: String, shape expected: [Int]) throws -> [Float] {
        guard let entry = entries[name] else {
            throw EncoderError.missingTensor(path: path, name: name)
        }
        guard let dtype = DType(rawValue: entry.dtype) else {
            throw EncoderError.tensorDType(path: path, name: name, found: entry.dtype)
        }
        guard entry.shape == expected else {
            throw EncoderError.tensorShape(path: path, name: name, expected: expected, found: entry.shape)
        }
        let count = entry.shape.reduce(1, *)
        return data.withUnsafeBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[(dataStart + entry.begin)..<(dataStart + entry.end)])
            return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                switch dtype {
                case .f32:
                    for i in 0..<count { out[i] = Float(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
                case .f16:
                    for i in 0..<count { out[i] = Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)) }
                case .bf16:
                    for i in 0..<count { out[i] = Float(bitPattern: UInt32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16) }
                }
                initialized = count
            }
        }
    }

    /// True when the file has a tensor called `name`.
    public func contains(_ name: String) -> Bool { entries[name] != nil }
}
