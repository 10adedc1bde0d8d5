import NIOCore
import SwiftProtobuf

/// The frame layout, version 1 (all integers big-endian):
///
///     offset 0  4 bytes  magic "SPRW"
///     offset 4  1 byte   version = 1
///     offset 5  1 byte   flags = 0 (reserved)
///     offset 6  4 bytes  length: bytes of the envelope that follows (at most the frame limit)
///     offset 10 length   a serialized `Sparrow_V1_Envelope`
///
/// The length is checked against the limit as soon as the header is in, before anything is
/// allocated for the body, so a peer claiming 2³¹−1 bytes costs nothing but its connection.
public enum Frame {
    public static let magic: [UInt8] = Array("SPRW".utf8)
    public static let version: UInt8 = 1
    public static let headerSize = 10
    /// Default largest envelope accepted or sent: 16 MiB.
    public static let defaultLimit = 16 << 20

    /// Appends one frame holding `envelope` to `buffer`.
    public static func write(_ envelope: Sparrow_V1_Envelope, into buffer: inout ByteBuffer, limit: Int) throws {
        let body: [UInt8] = try envelope.serializedBytes()
        guard body.count <= limit else { throw FrameError.tooLarge(claimed: body.count, limit: limit) }
        buffer.writeBytes(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(body.count))
        buffer.writeBytes(body)
    }
}

/// Why a byte stream is not a valid frame sequence; the connection is closed with this reason.
public enum FrameError: Error, Equatable, CustomStringConvertible {
    case badMagic([UInt8])
    case unsupportedVersion(UInt8)
    case unsupportedFlags(UInt8)
    case tooLarge(claimed: Int, limit: Int)
    case malformedEnvelope(String)
    case truncated(missing: Int)

    public var description: String {
        switch self {
        case .badMagic(let bytes): "bad magic \(bytes.map { String($0, radix: 16) }) (expected \"SPRW\")"
        case .unsupportedVersion(let v): "unsupported frame version \(v) (this build speaks 1)"
        case .unsupportedFlags(let f): "unsupported frame flags \(f) (must be 0)"
        case .tooLarge(let claimed, let limit): "frame of \(claimed) bytes exceeds the limit of \(limit) bytes"
        case .malformedEnvelope(let reason): "malformed envelope: \(reason)"
        case .truncated(let missing): "connection ended inside a frame (\(missing) bytes missing)"
        }
    }
}

/// Cuts frames out of a byte stream: pure logic, fed any split of the stream.
public struct FrameParser: Sendable {
    public let limit: Int

    public init(limit: Int = Frame.defaultLimit) {
        self.limit = limit
    }

    /// The next complete envelope in `buffer` (consumed), or nil until more bytes arrive.
    public func next(_ buffer: inout ByteBuffer) throws -> Sparrow_V1_Envelope? {
        guard let header = buffer.getBytes(at: buffer.readerIndex, length: Frame.headerSize) else {
            if let partial = buffer.getBytes(at: buffer.readerIndex, length: min(buffer.readableBytes, 4)),
               partial != Array(Frame.magic.prefix(partial.count)) {
                throw FrameError.badMagic(partial)
            }
            return nil
        }
        guard Array(header[0..<4]) == Frame.magic else { throw FrameError.badMagic(Array(header[0..<4])) }
        guard header[4] == Frame.version else { throw FrameError.unsupportedVersion(header[4]) }
        guard header[5] == 0 else { throw FrameError.unsupportedFlags(header[5]) }
        let length = header[6..<10].reduce(0) { $0 << 8 | Int($1) }
        guard length <= limit else { throw FrameError.tooLarge(claimed: length, limit: limit) }
        guard buffer.readableBytes >= Frame.headerSize + length else { return nil }
        buffer.moveReaderIndex(forwardBy: Frame.headerSize)
        let body = buffer.readSlice(length: length)!
        do {
            return try Sparrow_V1_Envelope(serializedBytes: Array(buffer: body))
        } catch {
            throw FrameError.malformedEnvelope("\(error)")
        }
    }

    /// Bytes still missing for the frame that `buffer` starts (for the truncation report).
    public func missing(_ buffer: ByteBuffer) -> Int {
        guard let header = buffer.getBytes(at: buffer.readerIndex, length: Frame.headerSize) else {
            return Frame.headerSize - buffer.readableBytes
        }
        let length = header[6..<10].reduce(0) { $0 << 8 | Int($1) }
        return Frame.headerSize + length - buffer.readableBytes
    }
}

/// NIO decoder: bytes → envelopes, closing the stream on the first invalid frame.
public struct EnvelopeDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Sparrow_V1_Envelope
    let parser: FrameParser

    public init(limit: Int = Frame.defaultLimit) {
        parser = FrameParser(limit: limit)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let envelope = try parser.next(&buffer) else { return .needMoreData }
        context.fireChannelRead(NIOAny(envelope))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while let envelope = try parser.next(&buffer) { context.fireChannelRead(NIOAny(envelope)) }
        if buffer.readableBytes > 0 && seenEOF { throw FrameError.truncated(missing: parser.missing(buffer)) }
        return .needMoreData
    }
}

/// NIO encoder: envelopes → frames.
public struct EnvelopeEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Sparrow_V1_Envelope
    let limit: Int

    public init(limit: Int = Frame.defaultLimit) {
        self.limit = limit
    }

    public func encode(data: Sparrow_V1_Envelope, out: inout ByteBuffer) throws {
        try Frame.write(data, into: &out, limit: limit)
    }
}
