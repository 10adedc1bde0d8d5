import FuzzSupport
import NIOCore
import NIOEmbedded
import SparrowWire

/// One input is a byte stream as a peer sends it to a server. It is cut into frames by
/// `FrameParser` (whole, and byte by byte as a slow peer sends it), tracked by
/// `ConnectionStateMachine`, and served by the server's own pipeline (`RPCServer.serve`) over an
/// `EmbeddedChannel`: with no checks, every request is dispatched to its method's route
/// (`RequestChecks`); under a node's access policy, none gets past it without a credential.

/// The smallest frame limit a server can be given (`--max-frame-mb 1`).
let frameLimit = 1 << 20

/// What a parser made of a stream: the envelopes, then the error it stopped at, or the bytes
/// of an unfinished frame left over.
struct Parse {
    var envelopes: [Sparrow_V1_Envelope] = []
    var error: FrameError?
    var leftover = 0
    var missing = 0
}

func parseWhole(_ bytes: [UInt8]) -> Parse {
    let parser = FrameParser(limit: frameLimit)
    var buffer = ByteBuffer(bytes: bytes)
    var parse = Parse()
    do {
        while let envelope = try parser.next(&buffer) { parse.envelopes.append(envelope) }
    } catch let error as FrameError {
        parse.error = error
    } catch {
        invariant(false, "the frame parser threw \(type(of: error)), not a FrameError: \(error)")
    }
    parse.leftover = buffer.readableBytes
    parse.missing = parser.missing(buffer)
    return parse
}

func parseByteByByte(_ bytes: [UInt8]) -> Parse {
    let parser = FrameParser(limit: frameLimit)
    var buffer = ByteBuffer()
    var parse = Parse()
    do {
        for byte in bytes {
            buffer.writeInteger(byte)
            while let envelope = try parser.next(&buffer) { parse.envelopes.append(envelope) }
        }
    } catch let error as FrameError {
        parse.error = error
    } catch {
        invariant(false, "the frame parser threw \(type(of: error)), not a FrameError: \(error)")
    }
    parse.leftover = buffer.readableBytes
    return parse
}

/// The same stream gives the same frames and the same verdict however it is split. (A bad
/// magic is caught as soon as it shows, so byte by byte it names fewer bytes.)
func checkSplits(_ whole: Parse, _ bytes: [UInt8]) {
    let split = parseByteByByte(bytes)
    invariant(split.envelopes == whole.envelopes, "byte by byte the stream gave \(split.envelopes.count) envelopes, whole \(whole.envelopes.count)")
    switch (whole.error, split.error) {
    case (nil, nil):
        invariant(split.leftover == whole.leftover, "byte by byte \(split.leftover) bytes were left, whole \(whole.leftover)")
    case (.badMagic?, .badMagic?):
        break
    case let (wholeError?, splitError?):
        invariant(wholeError == splitError, "byte by byte the stream failed with \(splitError), whole with \(wholeError)")
    case let (wholeError, splitError):
        invariant(false, "byte by byte the stream ended with \(String(describing: splitError)), whole with \(String(describing: wholeError))")
    }
}

/// The connection's state machine follows the same frame boundaries as the parser.
func checkStateMachine(_ whole: Parse, _ bytes: [UInt8]) {
    guard whole.error == nil else { return }   // the server closes such a connection
    var machine = ConnectionStateMachine(limits: ConnectionLimits(), now: .now)
    machine.read(bytes, now: .now)
    invariant(machine.isBetweenFrames == (whole.leftover == 0), "the state machine is \(machine.isBetweenFrames ? "" : "not ")between frames with \(whole.leftover) bytes left")
    invariant(whole.leftover == 0 || whole.missing > 0, "an unfinished frame of \(whole.leftover) bytes is missing \(whole.missing)")
}

/// Every envelope read is written back to the same frame.
func checkRoundTrip(_ whole: Parse) {
    for envelope in whole.envelopes {
        var buffer = ByteBuffer()
        do {
            try Frame.write(envelope, into: &buffer, limit: frameLimit)
            let again = try FrameParser(limit: frameLimit).next(&buffer)
            invariant(again == envelope && buffer.readableBytes == 0, "an envelope did not survive its frame")
        } catch {
            invariant(false, "an envelope read from a frame cannot be framed again: \(error)")
        }
    }
}

/// What the server's pipeline answers to the stream, frame by frame.
func serve(_ bytes: [UInt8], security: ServerSecurity) -> [Sparrow_V1_Envelope] {
    let channel = EmbeddedChannel()
    do {
        try RPCServer.serve(
            connection: channel, service: ImmediateService(RequestChecks.routes), security: security, frameLimit: frameLimit, logger: quietLogger)
    } catch {
        invariant(false, "the server's handlers cannot be added: \(error)")
    }
    // A stream the server refuses closes the channel: the error goes no further than its handler.
    do {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
    } catch {
        invariant(false, "the server's pipeline let an error through: \(error)")
    }
    var answers: [Sparrow_V1_Envelope] = []
    var out = ByteBuffer()
    while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
        out.writeImmutableBuffer(buffer)
    }
    let bytesOut = out.readableBytes
    do {
        while let answer = try FrameParser(limit: frameLimit).next(&out) { answers.append(answer) }
    } catch {
        invariant(false, "the server wrote a frame its peers cannot read: \(error)")
    }
    invariant(out.readableBytes == 0, "the server wrote an unfinished frame (\(out.readableBytes) of \(bytesOut) bytes)")
    // A channel the server closed tears its pipeline down in a task on its event loop, which an
    // embedded loop runs only when told to (`finish` refuses a closed channel).
    _ = try? channel.finish()
    channel.embeddedEventLoop.run()
    return answers
}

/// Answers are responses to requests sent, in order, each small enough for any peer, and one
/// to every request when the stream was valid.
func checkAnswers(_ answers: [Sparrow_V1_Envelope], to whole: Parse, policy: Bool) {
    // Requests are answered in the order they came (all at once, here); a CANCEL gets no
    // answer; any other kind from a client closes the connection.
    var requests: [Sparrow_V1_Envelope] = []
    var closed = whole.error != nil
    for envelope in whole.envelopes {
        if envelope.kind == .request {
            requests.append(envelope)
        } else if envelope.kind != .cancel {
            closed = true
            break
        }
    }
    invariant(closed ? answers.count <= requests.count : answers.count == requests.count, "\(answers.count) answers to \(requests.count) requests")
    for (answer, request) in zip(answers, requests) {
        invariant(answer.kind == .response && answer.requestID == request.requestID, "an answer to request \(request.requestID) is \(answer.kind) \(answer.requestID)")
        invariant(answer.method == (request.method.utf8.count <= 256 ? request.method : ""), "an answer echoes a method it should not")
        invariant(answer.status.message.utf8.count <= RPCError.messageLimit, "an answer's message has \(answer.status.message.utf8.count) bytes")
        let size = (try? answer.serializedBytes() as [UInt8])?.count ?? .max
        invariant(size <= RPCError.messageLimit + 1024 || answer.status.code == .ok, "an error answer has \(size) bytes")
        if policy {
            invariant(answer.status.code == .unauthenticated, "a call without a credential was answered \(answer.status.code.name)")
        } else if answer.status.code == .ok {
            invariant(RequestChecks.requestType(of: request.method) != nil, "a call of unknown method \(RPCError.printable(request.method)) was answered")
        }
    }
}

func fuzzStream(_ bytes: [UInt8]) {
    let whole = parseWhole(bytes)
    checkSplits(whole, bytes)
    checkStateMachine(whole, bytes)
    checkRoundTrip(whole)
    checkAnswers(serve(bytes, security: .none), to: whole, policy: false)
    // No TLS here, so no certificate, and no keys: every call must be refused.
    let policy = bytes.count % 2 == 0 ? AccessPolicy.shardNode : AccessPolicy.coordinator
    checkAnswers(serve(bytes, security: ServerSecurity(tls: nil, policy: policy, audit: quietLogger)), to: whole, policy: true)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzStream(fuzzInput(data, size))
    return 0
}
