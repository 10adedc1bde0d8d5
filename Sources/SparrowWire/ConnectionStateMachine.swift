/// What one server connection may hold and for how long (settings of `shard serve` and
/// `coordinator serve`).
public struct ConnectionLimits: Sendable, Equatable {
    /// Connections open at once per listener; one more is closed as soon as it is accepted.
    public var maxConnections: Int
    /// A connection with no call in flight and no bytes either way for this long is closed.
    public var idleTimeout: Duration
    /// A frame whose first byte has arrived must be complete within this (slow senders hold a
    /// buffer of up to the frame limit).
    public var frameTimeout: Duration
    /// Calls in flight on one connection; one more is refused at once with `RESOURCE_EXHAUSTED`.
    public var maxInFlight: Int
    /// Answers waiting to be sent past which the connection is not read until they drain
    /// (a client that does not read its answers stops being read itself).
    public var outboundHighWater: Int
    /// Calls in progress on the whole server, over all connections (see `WorkGate`); calls
    /// answered at once on the event loop (a node's searches) are not counted.
    public var maxCallsInProgress: Int
    /// Bytes of frames still arriving, over all connections (see `FrameBudget`): a connection
    /// whose frame would take more is closed, so that slow senders cannot fill the memory.
    public var maxPartialFrameBytes: Int

    public init(
        maxConnections: Int = 1024, idleTimeout: Duration = .seconds(300), frameTimeout: Duration = .seconds(10), maxInFlight: Int = 256,
        outboundHighWater: Int = 4 << 20, maxCallsInProgress: Int = 1024, maxPartialFrameBytes: Int = 64 << 20
    ) {
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.frameTimeout = frameTimeout
        self.maxInFlight = maxInFlight
        self.outboundHighWater = outboundHighWater
        self.maxCallsInProgress = maxCallsInProgress
        self.maxPartialFrameBytes = maxPartialFrameBytes
    }
}

/// One server connection's bookkeeping as a value: where the byte stream stands in the frame
/// layout (`Frame`), the calls in flight, when it was last active, whether its answers are
/// backed up. Each event returns what the connection must do; `ServerConnectionHandler` and
/// `ConnectionGuardHandler` carry it out.
public struct ConnectionStateMachine: Sendable {
    public enum Action: Equatable, Sendable {
        case none
        case close(CloseReason)
        case pauseReading
        case resumeReading
    }

    /// Why a connection was closed by its server; stable names for logs and metrics.
    public enum CloseReason: String, Equatable, Sendable {
        case idle
        case slowFrame = "slow_frame"
        case frameBudget = "frame_budget"

        public func message(_ limits: ConnectionLimits) -> String {
            switch self {
            case .idle: "idle for \(limits.idleTimeout) with no call in flight"
            case .slowFrame: "a frame was not complete within \(limits.frameTimeout)"
            case .frameBudget: "frames still arriving on all connections would hold more than \(limits.maxPartialFrameBytes >> 20) MiB"
            }
        }
    }

    public let limits: ConnectionLimits
    public private(set) var inFlight = 0
    private var lastActivity: ContinuousClock.Instant
    /// When the frame now arriving began (nil: between frames).
    private var frameStarted: ContinuousClock.Instant?
    /// Header bytes of the next frame seen so far (at most `Frame.headerSize`).
    private var header: [UInt8] = []
    /// Body bytes of the current frame still to come.
    private var bodyRemaining = 0
    /// Bytes of the frame now arriving received so far (what the frame decoder holds).
    public private(set) var partialFrameBytes = 0
    private var paused = false

    public init(limits: ConnectionLimits, now: ContinuousClock.Instant) {
        self.limits = limits
        lastActivity = now
    }

    public var isBetweenFrames: Bool { header.isEmpty && bodyRemaining == 0 }

    /// Bytes arrived from the peer.
    public mutating func read(_ bytes: some Collection<UInt8>, now: ContinuousClock.Instant) {
        lastActivity = now
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if frameStarted == nil { frameStarted = now }
            if bodyRemaining > 0 {
                let take = min(bodyRemaining, bytes.distance(from: index, to: bytes.endIndex))
                bodyRemaining -= take
                partialFrameBytes += take
                index = bytes.index(index, offsetBy: take)
            } else {
                header.append(bytes[index])
                partialFrameBytes += 1
                index = bytes.index(after: index)
                if header.count == Frame.headerSize {
                    bodyRemaining = header[6..<10].reduce(0) { $0 << 8 | Int($1) }
                    header.removeAll(keepingCapacity: true)
                }
            }
            if isBetweenFrames {
                frameStarted = nil
                partialFrameBytes = 0
            }
        }
    }

    /// Bytes went out to the peer.
    public mutating func wrote(now: ContinuousClock.Instant) {
        lastActivity = now
    }

    /// A request wants to run: false when the connection already has `maxInFlight` calls.
    public mutating func start() -> Bool {
        guard inFlight < limits.maxInFlight else { return false }
        inFlight += 1
        return true
    }

    /// A call ended (its answer is written or could not be).
    public mutating func finish(now: ContinuousClock.Instant) {
        inFlight -= 1
        lastActivity = now
    }

    /// The periodic check: a frame that takes too long, or a connection idle too long, is closed.
    public func check(now: ContinuousClock.Instant) -> Action {
        if let frameStarted, now - frameStarted >= limits.frameTimeout { return .close(.slowFrame) }
        if inFlight == 0, isBetweenFrames, now - lastActivity >= limits.idleTimeout { return .close(.idle) }
        return .none
    }

    /// The channel's outbound buffer crossed a water mark.
    public mutating func writabilityChanged(writable: Bool) -> Action {
        if !writable && !paused {
            paused = true
            return .pauseReading
        }
        if writable && paused {
            paused = false
            return .resumeReading
        }
        return .none
    }
}
