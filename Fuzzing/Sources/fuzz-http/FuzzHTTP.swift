import FuzzSupport
import NIOCore
import SparrowCoordinator
import SparrowWire

/// One `POST /v1/search` body, decoded and checked as the HTTP API does (`HTTPAPI.decodeSearch`).
/// A body is a query within `QueryLimits` or an `invalidArgument` naming what is wrong; anything
/// else is a bug.
func fuzzSearchBody(_ input: [UInt8]) {
    let query: SearchQuery
    do {
        query = try HTTPAPI.decodeSearch(ByteBuffer(bytes: input))
    } catch let error as RPCError {
        invariant(error.code == .invalidArgument, "a body was refused with \(error)")
        return
    } catch {
        invariant(false, "a body failed with \(type(of: error)), not an RPCError: \(error)")
        return
    }
    // What the coordinator fans out holds what `QueryLimits` promise.
    invariant((1...QueryLimits.maxK).contains(query.k), "a body gave k \(query.k)")
    switch query.input {
    case .vector(let vector):
        invariant(!vector.isEmpty && vector.count <= QueryLimits.maxTerms, "a body gave a vector of \(vector.count) terms")
        invariant(vector.values.allSatisfy { $0.isFinite && $0 >= 0 }, "a body gave a weight that is negative or not finite")
    case .text(let text):
        invariant(text.utf8.count <= QueryLimits.maxTextBytes, "a body gave a text of \(text.utf8.count) bytes")
    }
    invariant(query.mode.problem == nil, "a body gave the mode \(query.mode): \(query.mode.problem ?? "")")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzSearchBody(fuzzInput(data, size))
    return 0
}
