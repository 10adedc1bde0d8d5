import Foundation
import NIOCore
import NIOEmbedded
import SparrowWire
import Testing

@Suite struct FrameTests {
    func envelope(_ id: UInt64, payload: Int = 5) -> Sparrow_V1_Envelope {
        var envelope = Sparrow_V1_Envelope()
        envelope.requestID = id
        envelope.method = "sparrow.v1.Shard/Search"
        envelope.timeoutMicros = 1234
        envelope.payload = Data((0..<payload).map { UInt8($0 & 0xff) })
        return envelope
    }

    func frames(_ envelopes: [Sparrow_V1_Envelope]) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        for envelope in envelopes { try Frame.write(envelope, into: &buffer, limit: Frame.defaultLimit) }
        return buffer
    }

    @Test func roundTripsWhateverTheByteSplit() throws {
        let sent = [envelope(1), envelope(2, payload: 0), envelope(3, payload: 70_000)]
        let bytes = Array(buffer: try frames(sent))
        for chunk in [1, 3, 10, 4096, bytes.count] {
            let parser = FrameParser()
            var buffer = ByteBuffer()
            var received: [Sparrow_V1_Envelope] = []
            for start in stride(from: 0, to: bytes.count, by: chunk) {
                buffer.writeBytes(bytes[start..<min(start + chunk, bytes.count)])
                while let envelope = try parser.next(&buffer) { received.append(envelope) }
            }
            #expect(received == sent, "chunk \(chunk)")
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func headerIsDocumentedLayout() throws {
        let bytes = Array(buffer: try frames([envelope(7)]))
        #expect(Array(bytes[0..<4]) == Array("SPRW".utf8))
        #expect(bytes[4] == 1 && bytes[5] == 0)
        let length = bytes[6..<10].reduce(0) { $0 << 8 | Int($1) }
        #expect(length == bytes.count - Frame.headerSize)
    }

    @Test func decodeRejectsFrameLargerThanLimitFromTheHeaderAlone() {
        var buffer = ByteBuffer(bytes: Array("SPRW".utf8) + [1, 0, 0x7f, 0xff, 0xff, 0xff])
        #expect(throws: FrameError.tooLarge(claimed: Int(Int32.max), limit: Frame.defaultLimit)) {
            try FrameParser().next(&buffer)
        }
    }

    @Test func decodeRejectsBadMagicEarly() {
        var buffer = ByteBuffer(bytes: Array("GET ".utf8))
        #expect(throws: FrameError.badMagic(Array("GET ".utf8))) { try FrameParser().next(&buffer) }
        var short = ByteBuffer(bytes: [0x53, 0x51])
        #expect(throws: FrameError.badMagic([0x53, 0x51])) { try FrameParser().next(&short) }
    }

    @Test func decodeRejectsUnknownVersionAndFlags() {
        var version = ByteBuffer(bytes: Array("SPRW".utf8) + [2, 0, 0, 0, 0, 0])
        #expect(throws: FrameError.unsupportedVersion(2)) { try FrameParser().next(&version) }
        var flags = ByteBuffer(bytes: Array("SPRW".utf8) + [1, 9, 0, 0, 0, 0])
        #expect(throws: FrameError.unsupportedFlags(9)) { try FrameParser().next(&flags) }
    }

    @Test func decodeRejectsGarbageEnvelope() {
        var buffer = ByteBuffer(bytes: Array("SPRW".utf8) + [1, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff])
        #expect(throws: FrameError.self) { try FrameParser().next(&buffer) }
    }

    @Test func encoderRefusesEnvelopeOverTheLimit() {
        var buffer = ByteBuffer()
        #expect(throws: FrameError.self) { try Frame.write(envelope(1, payload: 2000), into: &buffer, limit: 1000) }
        #expect(buffer.readableBytes == 0)
    }

    @Test func channelDecoderDeliversEnvelopesAndReportsTruncation() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(EnvelopeDecoder()))
        var bytes = try frames([envelope(1), envelope(2)])
        bytes.writeBytes(Array("SPRW".utf8) + [1, 0, 0, 0, 0, 50, 1, 2])
        try channel.writeInbound(bytes)
        #expect(try channel.readInbound(as: Sparrow_V1_Envelope.self)?.requestID == 1)
        #expect(try channel.readInbound(as: Sparrow_V1_Envelope.self)?.requestID == 2)
        #expect(try channel.readInbound(as: Sparrow_V1_Envelope.self) == nil)
        #expect(throws: FrameError.truncated(missing: 48)) { try channel.finish() }
    }

    @Test func endpointsParse() throws {
        #expect(try Endpoint(parsing: "127.0.0.1:7100") == Endpoint(host: "127.0.0.1", port: 7100))
        #expect(try Endpoint(parsing: "[::1]:80") == Endpoint(host: "::1", port: 80))
        #expect(throws: RPCError.self) { try Endpoint(parsing: "localhost") }
        #expect(throws: RPCError.self) { try Endpoint(parsing: ":80") }
    }
}
