import FuzzSupport
import SparrowWire
import SwiftProtobuf

/// One request as a route gets it, `<method>\n<payload>`: decoded as the method's request type
/// and put through the checks its handler makes first (`RequestChecks`). A request is answered
/// or refused with an `RPCError` that fits an answer; anything else is a bug.
func fuzzRequest(_ input: [UInt8]) {
    guard let newline = input.firstIndex(of: 0x0a) else { return }
    let method = String(decoding: input[..<newline], as: UTF8.self)
    guard let handler = RequestChecks.routes.immediate(method: method), let type = RequestChecks.requestType(of: method) else { return }
    do {
        // Answered with the request re-serialized, which decodes to the same bytes again.
        let answer = try handler(Array(input[(newline + 1)...]), nil)
        let again = try reserialize(type, answer)
        invariant(again == answer, "\(method): a serialized request does not survive decoding (\(answer.count) bytes → \(again.count))")
    } catch let error as RPCError {
        invariant([.invalidArgument, .failedPrecondition].contains(error.code), "\(method): refused with \(error)")
        invariant(error.bounded.message.utf8.count <= RPCError.messageLimit, "\(method): an answer's message outgrows the limit")
    } catch {
        invariant(false, "\(method): failed with \(Swift.type(of: error)), not an RPCError: \(error)")
    }
}

func reserialize<Request: Message>(_: Request.Type, _ bytes: [UInt8]) throws -> [UInt8] {
    try Request(serializedBytes: bytes).serializedBytes()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzRequest(fuzzInput(data, size))
    return 0
}
