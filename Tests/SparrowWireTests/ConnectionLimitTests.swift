import Foundation
import Logging
import NIOCore
import SparrowWire
import Testing

/// The connection state machine as a value, fed any split of the byte stream.
@Suite struct ConnectionStateMachineTests {
    let limits = ConnectionLimits(maxConnections: 4, idleTimeout: .seconds(60), frameTimeout: .seconds(5), maxInFlight: 2, outboundHighWater: 1 << 20)
    let t0 = ContinuousClock.now

    func frame(body: Int) -> [UInt8] {
        Frame.magic + [Frame.version, 0] + withUnsafeBytes(of: UInt32(body).bigEndian, Array.init) + [UInt8](repeating: 1, count: body)
    }

    @Test func framesAreTrackedAcrossAnySplit() {
        let stream = frame(body: 300) + frame(body: 0) + frame(body: 7)
        for chunk in [1, 3, 10, 11, 64, stream.count] {
            var machine = ConnectionStateMachine(limits: limits, now: t0)
            var offset = 0
            while offset < stream.count {
                let end = min(offset + chunk, stream.count)
                machine.read(stream[offset..<end], now: t0)
                offset = end
            }
            #expect(machine.isBetweenFrames, "chunks of \(chunk)")
        }
    }

    @Test func aStalledFrameIsClosedAfterTheFrameTimeout() {
        var machine = ConnectionStateMachine(limits: limits, now: t0)
        machine.read(frame(body: 100).prefix(50), now: t0)
        #expect(machine.check(now: t0 + .seconds(4)) == .none)
        // Trickling more bytes does not reset the frame's clock.
        machine.read([1, 1, 1], now: t0 + .seconds(4))
        #expect(machine.check(now: t0 + .seconds(5)) == .close(.slowFrame))
    }

    @Test func idleMeansNoCallInFlightAndNoTraffic() {
        var machine = ConnectionStateMachine(limits: limits, now: t0)
        let started = machine.start()
        #expect(started)
        #expect(machine.check(now: t0 + .seconds(120)) == .none, "a long call keeps its connection")
        machine.finish(now: t0 + .seconds(120))
        #expect(machine.check(now: t0 + .seconds(179)) == .none)
        #expect(machine.check(now: t0 + .seconds(180)) == .close(.idle))
        machine.wrote(now: t0 + .seconds(180))
        #expect(machine.check(now: t0 + .seconds(181)) == .none)
    }

    @Test func callsBeyondTheInFlightCapAreRefused() {
        var machine = ConnectionStateMachine(limits: limits, now: t0)
        let admitted = (0..<3).map { _ in machine.start() }
        #expect(admitted == [true, true, false])
        machine.finish(now: t0)
        let again = machine.start()
        #expect(again && machine.inFlight == 2)
    }

    @Test func readingPausesWhileAnswersBackUp() {
        var machine = ConnectionStateMachine(limits: limits, now: t0)
        #expect(machine.writabilityChanged(writable: false) == .pauseReading)
        #expect(machine.writabilityChanged(writable: false) == .none)
        #expect(machine.writabilityChanged(writable: true) == .resumeReading)
        #expect(machine.writabilityChanged(writable: true) == .none)
    }
}

/// The limits on a real server, over real sockets on 127.0.0.1.
@Suite struct ConnectionLimitTests {
    func withServer(_ limits: ConnectionLimits, _ body: (RPCServer) async throws -> Void) async throws {
        let server = try await RPCServer.bind(Endpoint(host: "127.0.0.1", port: 0), service: RPCTests.service(), limits: limits, logger: Logger(label: "test"))
        do {
            try await body(server)
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }

    @Test func aSlowlorisFrameAndAnIdleConnectionAreClosed() async throws {
        let limits = ConnectionLimits(idleTimeout: .milliseconds(600), frameTimeout: .milliseconds(400))
        try await withServer(limits) { server in
            let slow = try TestSocket(server.address)
            try slow.send(Frame.magic + [1, 0, 0, 0x10, 0, 0] + [UInt8](repeating: 0, count: 1000))   // 1 MiB announced, 1000 bytes sent
            let idle = try TestSocket(server.address)
            let started = ContinuousClock.now
            #expect(slow.waitForClose(seconds: 5))
            #expect(idle.waitForClose(seconds: 5))
            #expect(ContinuousClock.now - started < .seconds(4))
        }
    }

    @Test func framesStillArrivingAreBoundedOverAllConnections() async throws {
        // 1 MiB for every connection's frame in progress; each slow sender holds 300 KB of one.
        let server = try await RPCServer.bind(
            Endpoint(host: "127.0.0.1", port: 0), service: RPCTests.service(), limits: ConnectionLimits(maxPartialFrameBytes: 1 << 20),
            frameLimit: 512 << 10, logger: Logger(label: "test"))
        defer { Task { await server.shutdown() } }
        var senders: [TestSocket] = []
        for _ in 0..<4 {
            let sender = try TestSocket(server.address)
            try sender.send(Frame.magic + [1, 0, 0, 0x07, 0xA1, 0x20] + [UInt8](repeating: 0, count: 300_000))   // 500,000 announced
            senders.append(sender)
        }
        // All four would hold 1.2 MB: the one whose bytes the server read last is closed, the others are not.
        var open = senders
        let deadline = ContinuousClock.now + .seconds(5)
        while open.count == 4 && ContinuousClock.now < deadline {
            open.removeAll { $0.waitForClose(seconds: 0, microseconds: 50_000) }
        }
        #expect(open.count == 3)
        for sender in open { #expect(!sender.waitForClose(seconds: 0, microseconds: 200_000)) }
        // Once one of them finishes its frame (not a valid envelope: it is closed), a new sender fits.
        try open[0].send([UInt8](repeating: 0, count: 200_000))
        #expect(open[0].waitForClose(seconds: 5))
        try await Task.sleep(for: .milliseconds(200))   // its handlers are removed (and its share given back) after the close
        let next = try TestSocket(server.address)
        try next.send(Frame.magic + [1, 0, 0, 0x07, 0xA1, 0x20] + [UInt8](repeating: 0, count: 300_000))
        #expect(!next.waitForClose(seconds: 0, microseconds: 500_000))
    }

    @Test func connectionsBeyondTheCapAreClosed() async throws {
        try await withServer(ConnectionLimits(maxConnections: 3)) { server in
            let open = try (0..<3).map { _ in try TestSocket(server.address) }
            try await Task.sleep(for: .milliseconds(200))
            #expect(server.openConnections == 3)
            let extra = try TestSocket(server.address)
            #expect(extra.waitForClose(seconds: 5))
            #expect(!open[0].waitForClose(seconds: 0, microseconds: 200_000), "the first connections stay open")
        }
    }

    @Test func pipelinedCallsBeyondTheInFlightCapAreRefusedAtOnce() async throws {
        try await withServer(ConnectionLimits(maxInFlight: 4)) { server in
            let client = RPCClient(server.address)
            let outcomes = await Self.sleepOutcomes(20, clients: [client], millis: 300)
            // One connection per event loop: each takes at most 4 at a time.
            #expect(outcomes.filter { $0 == .ok }.count <= 4 * System.coreCount)
            #expect(outcomes.filter { $0 == .resourceExhausted }.count >= 20 - 4 * System.coreCount)
            #expect(outcomes.allSatisfy { $0 == .ok || $0 == .resourceExhausted })
            await client.close()
        }
    }
}

extension ConnectionLimitTests {
    /// How `count` concurrent `test/Sleep` calls of `millis` ended, spread over `clients`.
    static func sleepOutcomes(_ count: Int, clients: [RPCClient], millis: Int) async -> [Sparrow_V1_Status.Code] {
        var sleep = Sparrow_V1_StatsRequest()
        sleep.shard = "\(millis)"
        let request = sleep
        return await withTaskGroup(of: Sparrow_V1_Status.Code.self) { group in
            for n in 0..<count {
                let client = clients[n % clients.count]
                group.addTask {
                    do {
                        let _: Sparrow_V1_HealthResponse = try await client.call("test/Sleep", request, timeout: .seconds(10))
                        return .ok
                    } catch let error as RPCError {
                        return error.code
                    } catch {
                        return .internal
                    }
                }
            }
            return await group.reduce(into: [Sparrow_V1_Status.Code]()) { $0.append($1) }
        }
    }
}

/// A plain blocking TCP socket.
final class TestSocket {
    let fd: Int32

    init(_ endpoint: Endpoint) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(endpoint.port).bigEndian)
        inet_pton(AF_INET, endpoint.host, &address.sin_addr)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw RPCError.unavailable("connect failed: errno \(errno)") }
    }

    func send(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw RPCError.unavailable("send failed: errno \(errno)") }
    }

    /// True when the peer closes the connection within the time given.
    func waitForClose(seconds: Int, microseconds: Int = 0) -> Bool {
        var timeout = timeval(tv_sec: seconds, tv_usec: microseconds)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 || (n < 0 && errno == ECONNRESET) { return true }
            if n < 0 { return false }
        }
    }

    deinit { close(fd) }
}

@Suite struct WorkGateTests {
    @Test func callsPastTheServersCapacityAreRefusedAtOnce() async throws {
        let server = try await RPCServer.bind(
            Endpoint(host: "127.0.0.1", port: 0), service: RPCTests.service(), limits: ConnectionLimits(maxCallsInProgress: 3), logger: Logger(label: "test"))
        // Separate clients: separate connections, so that only the server-wide bound applies.
        let clients = (0..<10).map { _ in RPCClient(server.address) }
        let outcomes = await ConnectionLimitTests.sleepOutcomes(10, clients: clients, millis: 1500)
        #expect(outcomes.filter { $0 == .ok }.count <= 3 + 2, "\(outcomes)")
        #expect(outcomes.filter { $0 == .resourceExhausted }.count >= 5, "\(outcomes)")
        #expect(server.gate.current == 0 && server.gate.refused >= 5)
        for client in clients { await client.close() }
        await server.shutdown()
    }
}
