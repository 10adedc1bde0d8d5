import Foundation
import NIOCore
import NIOPosix
import SparrowWire

/// Open-loop load on a coordinator's protobuf port (plaintext): searches sent on a schedule
/// over a few connections whatever comes back, as many independent users send them. It runs on
/// one event loop of its own, with no task per search, so that the users cost little CPU next to
/// the servers they load (a task and a continuation per search cost more than the refusal they get).
final class OpenLoopLoad: @unchecked Sendable {
    enum Outcome: Sendable {
        case answered(Duration)
        case refused(Duration)
        case failed(String)
    }

    /// One connection's searches in flight and what came back. Used on `loop` only.
    final class Connection: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = Sparrow_V1_Envelope
        typealias OutboundOut = Sparrow_V1_Envelope
        var sent: [UInt64: NIODeadline] = [:]
        var outcomes: [Outcome] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            guard let start = sent.removeValue(forKey: envelope.requestID) else { return }
            let latency = Duration.nanoseconds((NIODeadline.now() - start).nanoseconds)
            switch envelope.status.code {
            case .ok:
                let response = try? Sparrow_V1_QueryResponse(serializedBytes: Array(envelope.payload))
                if let response, response.coverage.failed.isEmpty {
                    outcomes.append(.answered(latency))
                } else {
                    outcomes.append(.failed("partial or unreadable answer: \(response?.coverage.failed.description ?? "?")"))
                }
            case .resourceExhausted: outcomes.append(.refused(latency))
            default: outcomes.append(.failed("\(envelope.status.code.name): \(envelope.status.message)"))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            for _ in sent { outcomes.append(.failed("the connection closed")) }
            sent = [:]
        }
    }

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let loop: any EventLoop
    private let channels: [any Channel]
    private let connections: [Connection]
    private let requests: [Sparrow_V1_Envelope]

    /// Connects `count` connections to `endpoint`; `queries` are sent in turn, each with a 2 s deadline.
    init(_ endpoint: Endpoint, queries: [[String: Float]], count: Int = 4) throws {
        let loop = group.next()
        self.loop = loop
        let connections = (0..<count).map { _ in Connection() }
        self.connections = connections
        requests = try queries.map { query in
            var request = Sparrow_V1_QueryRequest()
            request.vector = .init(query)
            request.k = 10
            request.timeoutMs = 2000
            var envelope = Sparrow_V1_Envelope()
            envelope.kind = .request
            envelope.method = CoordinatorMethod.search
            envelope.timeoutMicros = 5_000_000
            envelope.payload = try request.serializedData()
            return envelope
        }
        channels = try connections.map { connection in
            return try ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            ByteToMessageHandler(EnvelopeDecoder()), MessageToByteHandler(EnvelopeEncoder()), connection,
                        ])
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port).wait()
        }
    }

    /// Sends `rate` searches a second for `duration`, then waits (up to 10 s) for the answers;
    /// returns every search's outcome. One run at a time.
    func run(rate: Double, for duration: Duration) async throws -> [Outcome] {
        let start = NIODeadline.now()
        let total = Int(rate * duration.seconds)
        let schedule = try await loop.submit { () -> RepeatedTask in
            for connection in self.connections { connection.outcomes = [] }
            var next = 0
            return self.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .microseconds(500)) { task in
                let due = min(total, Int(rate * Double((NIODeadline.now() - start).nanoseconds) / 1e9))
                guard next < due else {
                    if next >= total { task.cancel() }
                    return
                }
                while next < due {
                    var envelope = self.requests[next % self.requests.count]
                    envelope.requestID = UInt64(next + 1)
                    let connection = next % self.connections.count
                    self.connections[connection].sent[envelope.requestID] = .now()
                    self.channels[connection].write(envelope, promise: nil)
                    next += 1
                }
                for channel in self.channels { channel.flush() }
            }
        }.get()
        _ = schedule
        let deadline = ContinuousClock.now + duration + .seconds(10)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            let (answered, waiting) = try await loop.submit {
                (self.connections.map(\.outcomes.count).reduce(0, +), self.connections.map(\.sent.count).reduce(0, +))
            }.get()
            if answered + waiting >= total && waiting == 0 { break }
        }
        return try await loop.submit { self.connections.flatMap(\.outcomes) }.get()
    }

    func close() async throws {
        for channel in channels { try? await channel.close() }
        try await group.shutdownGracefully()
    }
}
