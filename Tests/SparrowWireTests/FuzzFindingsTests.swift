import Foundation
import Logging
import NIOCore
import NIOEmbedded
import SparrowWire
import Synchronization
import Testing

/// Inputs the fuzzers found (`ops/fuzz`, `Fuzzing/`), fed through the code they broke.
@Suite struct FuzzFindingsTests {
    /// Answers every method at once (as the fuzzers' service does: an embedded channel belongs
    /// to one thread) and notes which methods ran.
    final class Recorder: RPCService {
        let calls = Mutex<[String]>([])

        func call(method: String, payload: [UInt8], deadline: ContinuousClock.Instant?) async throws -> [UInt8] { [] }

        func immediate(method: String) -> RPCImmediateHandler? {
            { [self] _, _ in
                calls.withLock { $0.append(method) }
                return []
            }
        }
    }

    /// The answers a server's connection pipeline writes for `bytes`, read in one go.
    func serve(_ bytes: [UInt8], _ service: Recorder) throws -> [Sparrow_V1_Envelope] {
        let channel = EmbeddedChannel()
        try RPCServer.serve(connection: channel, service: service, logger: Logger(label: "test"))
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        var out = ByteBuffer()
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out.writeImmutableBuffer(buffer) }
        _ = try? channel.finish()
        channel.embeddedEventLoop.run()
        var answers: [Sparrow_V1_Envelope] = []
        while let answer = try FrameParser().next(&out) { answers.append(answer) }
        return answers
    }

    func frame(_ id: UInt64, _ method: String, kind: Sparrow_V1_Envelope.Kind = .request) throws -> [UInt8] {
        var envelope = Sparrow_V1_Envelope()
        envelope.requestID = id
        envelope.kind = kind
        envelope.method = method
        var buffer = ByteBuffer()
        try Frame.write(envelope, into: &buffer, limit: Frame.defaultLimit)
        return Array(buffer: buffer)
    }

    /// fuzz-frames, crash-63ac2559…: a request, an envelope of kind RESPONSE (a client may not
    /// send one: the server closes the connection), another request and part of a frame, all in
    /// one read. The server ran the request after the one that closed the connection too.
    @Test func noCallRunsAfterTheServerClosedTheConnection() throws {
        let found = Array(Data(base64Encoded: """
            U1BSVwEAAAAAHwgJGhdzcGFycm93LnYxLlNoYXJkL0hlYWx0aCoCCAFTUFJXAQAAAAAdCAcQARoXc3BhcnJvdy52MS5TaGFydjEuU2hhcmRTUFJXAQAAAAAfCAka\
            F3NwYXJyb3cudjIuU2hhcmQvSGVhbHRoKgIKAVNQUlcBAAAAAP8PAAAAAAAAcJeXl5eXl5eXl5eXl5eXl5eXl5cql5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eX\
            l5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5dhLrm5ubm5L2x0ubm5ubm5ubm5ubm5ubloubm5ubk=
            """)!)
        let service = Recorder()
        let answers = try serve(found, service)
        #expect(service.calls.withLock { $0 } == ["sparrow.v1.Shard/Health"])
        #expect(answers.allSatisfy { $0.requestID == 9 && $0.method == "sparrow.v1.Shard/Health" })

        let plain = Recorder()
        _ = try serve(try frame(1, "test/A") + frame(2, "test/A", kind: .response) + frame(3, "test/B"), plain)
        #expect(plain.calls.withLock { $0 } == ["test/A"])
    }
}
