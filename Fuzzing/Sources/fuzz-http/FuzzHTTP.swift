import FuzzSupport
import NIOCore
import SparrowCoordinator
import SparrowWire
import SwiftProtobuf

/// One `POST /v1/search` body, decoded as the HTTP API decodes it (`HTTPAPI.decodeSearch`) and
/// checked as `Coordinator.search` checks a query before fanning out. A body is a query or an
/// `invalidArgument` naming what is wrong; anything else is a bug.
func fuzzSearchBody(_ input: [UInt8]) {
    let query: Sparrow_V1_QueryRequest
    do {
        query = try HTTPAPI.decodeSearch(ByteBuffer(bytes: input))
    } catch let error as RPCError {
        invariant(error.code == .invalidArgument, "a body was refused with \(error)")
        return
    } catch {
        invariant(false, "a body failed with \(type(of: error)), not an RPCError: \(error)")
        return
    }
    do {
        _ = try Coordinator.checkedK(query)
        _ = try Coordinator.checkedVector(query)
    } catch let error as RPCError {
        invariant(error.code == .invalidArgument, "a query was refused with \(error)")
    } catch {
        invariant(false, "a query failed with \(type(of: error)), not an RPCError: \(error)")
    }
    // The query as the coordinator's own protobuf method would get it.
    do {
        let bytes: [UInt8] = try query.serializedBytes()
        let decoded = try Sparrow_V1_QueryRequest(serializedBytes: bytes)
        let again: [UInt8] = try decoded.serializedBytes()
        invariant(again == bytes, "a query from JSON does not survive the wire")
    } catch {
        invariant(false, "a query from JSON does not serialize: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzSearchBody(fuzzInput(data, size))
    return 0
}
