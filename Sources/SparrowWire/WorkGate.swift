import Synchronization

/// A server's bound on calls in progress over all its connections: past `capacity` a call is
/// refused at once (`RESOURCE_EXHAUSTED`, HTTP 429) instead of queueing into its deadline.
public final class WorkGate: Sendable {
    public let capacity: Int
    private let inProgress = Atomic<Int>(0)
    private let refusedCount = Atomic<Int>(0)

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// Takes a place; false when all `capacity` are taken (then nothing is taken).
    public func tryEnter() -> Bool {
        if inProgress.wrappingAdd(1, ordering: .relaxed).newValue <= capacity { return true }
        inProgress.wrappingSubtract(1, ordering: .relaxed)
        refusedCount.wrappingAdd(1, ordering: .relaxed)
        return false
    }

    /// Gives back a place taken by `tryEnter`.
    public func leave() {
        inProgress.wrappingSubtract(1, ordering: .relaxed)
    }

    public var current: Int { inProgress.load(ordering: .relaxed) }

    /// Calls refused so far.
    public var refused: Int { refusedCount.load(ordering: .relaxed) }

    /// The refusal a caller gets.
    public var refusal: RPCError {
        RPCError(.resourceExhausted, "the server has \(capacity) calls in progress, its limit: try again shortly")
    }
}

/// Bytes of frames still arriving over all of a server's connections, bounded by `capacity`
/// (`ConnectionLimits.maxPartialFrameBytes`, and at least one whole frame).
public final class FrameBudget: Sendable {
    public let capacity: Int
    private let held = Atomic<Int>(0)

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// The budget of a server with `limits` and frames of at most `frameLimit` bytes: room for one whole frame at least.
    public convenience init(limits: ConnectionLimits, frameLimit: Int) {
        self.init(capacity: max(limits.maxPartialFrameBytes, frameLimit + Frame.headerSize))
    }

    /// Takes `bytes`; false (and nothing taken) when that would pass `capacity`.
    public func take(_ bytes: Int) -> Bool {
        if held.wrappingAdd(bytes, ordering: .relaxed).newValue <= capacity { return true }
        held.wrappingSubtract(bytes, ordering: .relaxed)
        return false
    }

    public func give(_ bytes: Int) {
        held.wrappingSubtract(bytes, ordering: .relaxed)
    }

    public var current: Int { held.load(ordering: .relaxed) }
}
