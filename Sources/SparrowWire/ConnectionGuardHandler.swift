import Logging
import Metrics
import NIOCore

/// A connection's `ConnectionStateMachine`, shared by the handlers of its pipeline (used on
/// its event loop only).
final class ConnectionState {
    var machine: ConnectionStateMachine

    init(limits: ConnectionLimits) {
        machine = ConnectionStateMachine(limits: limits, now: .now)
    }
}

/// The first handler after TLS: feeds the byte stream to the state machine, checks it every
/// `checkInterval` (slow frames, idle connections) and stops reading while the answers back up.
final class ConnectionGuardHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let state: ConnectionState
    let budget: FrameBudget
    let peer: String
    let logger: Logger
    private var timer: RepeatedTask?
    /// Bytes this connection holds in `budget`.
    private var held = 0
    private var closed = false
    static let closes = MetricHandles { Counter(label: $0, dimensions: $1) }

    init(state: ConnectionState, budget: FrameBudget, peer: String, logger: Logger) {
        self.state = state
        self.budget = budget
        self.peer = peer
        self.logger = logger
    }

    /// How often a connection is checked: often enough to keep each timeout within a quarter of itself, at most once a second.
    static func checkInterval(_ limits: ConnectionLimits) -> Duration {
        min(.seconds(1), limits.frameTimeout / 4, limits.idleTimeout / 4)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let interval = TimeAmount.microseconds(Self.checkInterval(state.machine.limits).microseconds)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            handler.value.check(context: bound.value)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        budget.give(held)
        held = 0
    }

    /// Feeds the bytes to the state machine and keeps this connection's share of the frame
    /// budget equal to the frame it is receiving; past the budget, the connection is closed.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        state.machine.read(unwrapInboundIn(data).readableBytesView, now: .now)
        let wanted = state.machine.partialFrameBytes
        if wanted > held {
            guard budget.take(wanted - held) else {
                perform(.close(.frameBudget), context: context)
                return
            }
        } else if wanted < held {
            budget.give(held - wanted)
        }
        held = wanted
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        state.machine.wrote(now: .now)
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        perform(state.machine.writabilityChanged(writable: context.channel.isWritable), context: context)
        context.fireChannelWritabilityChanged()
    }

    private func check(context: ChannelHandlerContext) {
        perform(state.machine.check(now: .now), context: context)
    }

    private func perform(_ action: ConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .close(let reason):
            Self.closes("sparrow_rpc_connections_closed_total", [("reason", reason.rawValue)]).increment()
            logger.info("closing connection", metadata: ["rpc.peer": "\(peer)", "rpc.reason": "\(reason.message(state.machine.limits))"])
            timer?.cancel()
            closed = true
            context.close(promise: nil)
        case .pauseReading:
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        case .resumeReading:
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            context.read()
        }
    }
}
