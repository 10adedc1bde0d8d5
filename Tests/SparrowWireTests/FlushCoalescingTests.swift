import NIOCore
import NIOEmbedded
import SparrowWire
import Testing

/// Frames written in one turn of a connection's event loop reach the transport as one write and
/// one flush (one TLS record, one system call), and every write's promise is kept.
@Suite struct FlushCoalescingTests {
    /// Records what reaches the transport: each write's bytes, and the writes each flush carries.
    final class Transport: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var writes: [[UInt8]] = []
        var flushes: [Int] = []
        private var unflushed = 0

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            writes.append(Array(buffer: unwrapOutboundIn(data)))
            unflushed += 1
            context.write(data, promise: promise)
        }

        func flush(context: ChannelHandlerContext) {
            flushes.append(unflushed)
            unflushed = 0
            context.flush()
        }
    }

    final class Calls {
        var inProgress = 2
    }

    func channel(copyLimit: Int = 64 << 10, calls: Calls = Calls()) throws -> (EmbeddedChannel, Transport) {
        let transport = Transport()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([transport, FlushCoalescingHandler(copyLimit: copyLimit) { calls.inProgress > 1 }])
        return (channel, transport)
    }

    @Test func framesWrittenInOneTurnGoDownAsOneWriteAndOneFlush() throws {
        let (channel, transport) = try channel()
        let written = (1...3).map { (byte: UInt8) in channel.writeAndFlush(ByteBuffer(bytes: [byte, byte])) }
        #expect(transport.writes.isEmpty && transport.flushes.isEmpty, "a frame went down before the turn ended")
        channel.embeddedEventLoop.run()
        #expect(transport.writes == [[1, 1, 2, 2, 3, 3]])
        #expect(transport.flushes == [1])
        for promise in written { try promise.wait() }
        // The next turn's frames get a write and a flush of their own.
        channel.writeAndFlush(ByteBuffer(bytes: [4]), promise: nil)
        channel.embeddedEventLoop.run()
        #expect(transport.writes == [[1, 1, 2, 2, 3, 3], [4]])
        #expect(transport.flushes == [1, 1])
        _ = try channel.finish()
    }

    /// A lone call's answer goes out at once: putting it off would gain nothing.
    @Test func aLoneCallsFrameIsFlushedAtOnce() throws {
        let calls = Calls()
        calls.inProgress = 1
        let (channel, transport) = try channel(calls: calls)
        channel.writeAndFlush(ByteBuffer(bytes: [1]), promise: nil)
        #expect(transport.writes == [[1]])
        #expect(transport.flushes == [1])
        // Busy again: the next frames wait for the end of the turn.
        calls.inProgress = 3
        channel.writeAndFlush(ByteBuffer(bytes: [2]), promise: nil)
        channel.writeAndFlush(ByteBuffer(bytes: [3]), promise: nil)
        #expect(transport.flushes == [1])
        channel.embeddedEventLoop.run()
        #expect(transport.writes == [[1], [2, 3]])
        #expect(transport.flushes == [1, 1])
        _ = try channel.finish()
    }

    @Test func largeFramesAreNotCopiedAndKeepTheirOrder() throws {
        let (channel, transport) = try channel(copyLimit: 4)
        channel.write(ByteBuffer(bytes: [1]), promise: nil)
        channel.write(ByteBuffer(bytes: [2, 2, 2, 2, 2]), promise: nil)
        channel.write(ByteBuffer(bytes: [3]), promise: nil)
        channel.write(ByteBuffer(bytes: [4, 4, 4]), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        // The small frame before the large one goes down first; small ones reaching the limit go together.
        #expect(transport.writes == [[1], [2, 2, 2, 2, 2], [3, 4, 4, 4]])
        #expect(transport.flushes == [3])
        _ = try channel.finish()
    }

    @Test func framesStillGatheredWhenTheConnectionClosesAreFailed() throws {
        let (channel, transport) = try channel()
        let unflushed = channel.write(ByteBuffer(bytes: [1]))
        try channel.pipeline.syncOperations.removeHandler(try channel.pipeline.syncOperations.handler(type: FlushCoalescingHandler.self)).wait()
        #expect(throws: ChannelError.ioOnClosedChannel) { try unflushed.wait() }
        #expect(transport.writes.isEmpty)
        _ = try? channel.finish()
    }
}
