import Foundation

/// The JSON forms of etcd v3's gRPC gateway (`/v3/…`, etcd 3.4): protobuf's JSON mapping as
/// the gateway writes it, with field names as in `rpc.proto` (snake case), 64-bit integers as
/// strings, bytes as base64, and zero values left out (an event without a `type` is a PUT, a
/// transaction without `succeeded` failed). The one owner of this format in Sparrow.
public enum EtcdWire {
    /// A 64-bit integer that the gateway writes as a string (and accepts as either).
    public struct Int64String: Codable, Sendable, Equatable {
        public var value: Int64

        public init(_ value: Int64) { self.value = value }

        public init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                guard let value = Int64(text) else {
                    throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a 64-bit integer")
                }
                self.value = value
            } else {
                value = try container.decode(Int64.self)
            }
        }

        public func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(String(value))
        }
    }

    public struct Header: Codable, Sendable {
        public var revision: Int64String?
        public var member_id: String?
        public var raft_term: Int64String?
    }

    /// A key and its value, with the revisions etcd keeps for it.
    public struct KeyValue: Codable, Sendable {
        public var key: Data
        public var value: Data?
        public var create_revision: Int64String?
        public var mod_revision: Int64String?
        public var version: Int64String?
        public var lease: Int64String?
    }

    public struct RangeRequest: Codable, Sendable {
        public var key: Data
        public var range_end: Data?
        public var limit: Int64String?
        public var sort_order: String?
        public var sort_target: String?
        public var count_only: Bool?
    }

    public struct RangeResponse: Codable, Sendable {
        public var header: Header?
        public var kvs: [KeyValue]?
        public var count: Int64String?
    }

    public struct PutRequest: Codable, Sendable {
        public var key: Data
        public var value: Data
        public var lease: Int64String?
    }

    public struct PutResponse: Codable, Sendable {
        public var header: Header?
    }

    public struct DeleteRangeRequest: Codable, Sendable {
        public var key: Data
        public var range_end: Data?
    }

    public struct DeleteRangeResponse: Codable, Sendable {
        public var header: Header?
        public var deleted: Int64String?
    }

    /// One condition of a transaction: `target` of `key` compared (`result`) with a value.
    public struct Compare: Codable, Sendable {
        public var result: String
        public var target: String
        public var key: Data
        public var create_revision: Int64String?
        public var mod_revision: Int64String?
        public var version: Int64String?
        public var lease: Int64String?
    }

    public struct RequestOp: Codable, Sendable {
        public var request_range: RangeRequest?
        public var request_put: PutRequest?
        public var request_delete_range: DeleteRangeRequest?
    }

    public struct ResponseOp: Codable, Sendable {
        public var response_range: RangeResponse?
        public var response_put: PutResponse?
        public var response_delete_range: DeleteRangeResponse?
    }

    public struct TxnRequest: Codable, Sendable {
        public var compare: [Compare]
        public var success: [RequestOp]
        public var failure: [RequestOp]
    }

    public struct TxnResponse: Codable, Sendable {
        public var header: Header?
        public var succeeded: Bool?
        public var responses: [ResponseOp]?
    }

    public struct LeaseGrantRequest: Codable, Sendable {
        public var TTL: Int64String
    }

    public struct LeaseGrantResponse: Codable, Sendable {
        public var header: Header?
        public var ID: Int64String?
        public var TTL: Int64String?
        public var error: String?
    }

    public struct LeaseID: Codable, Sendable {
        public var ID: Int64String
    }

    public struct LeaseKeepAliveResponse: Codable, Sendable {
        public var header: Header?
        public var ID: Int64String?
        public var TTL: Int64String?
    }

    public struct LeaseTimeToLiveResponse: Codable, Sendable {
        public var header: Header?
        public var ID: Int64String?
        public var TTL: Int64String?
        public var grantedTTL: Int64String?
    }

    public struct StatusResponse: Codable, Sendable {
        public var header: Header?
        public var version: String?
        public var dbSize: Int64String?
        public var leader: String?
        public var raftIndex: Int64String?
        public var raftTerm: Int64String?
        public var errors: [String]?
    }

    public struct WatchCreateRequest: Codable, Sendable {
        public var key: Data
        public var range_end: Data?
        public var start_revision: Int64String?
    }

    public struct WatchRequest: Codable, Sendable {
        public var create_request: WatchCreateRequest
    }

    public struct Event: Codable, Sendable {
        public var type: String?
        public var kv: KeyValue?
    }

    public struct WatchResponse: Codable, Sendable {
        public var header: Header?
        public var created: Bool?
        public var canceled: Bool?
        public var compact_revision: Int64String?
        public var cancel_reason: String?
        public var events: [Event]?
    }

    /// A streamed answer (`/v3/watch`, `/v3/lease/keepalive`): one object per message, either
    /// a result or the error that ended the stream.
    public struct Streamed<Result: Codable & Sendable>: Codable, Sendable {
        public var result: Result?
        public var error: GatewayError?
    }

    /// The gateway's error body (`{"error": …, "code": gRPC code, "message": …}`).
    public struct GatewayError: Codable, Sendable, Error {
        public var error: String?
        public var code: Int?
        public var message: String?
    }

    /// The key just past every key that starts with `prefix` (etcd's `range_end` for a prefix).
    public static func prefixEnd(_ prefix: Data) -> Data {
        var end = [UInt8](prefix)
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return Data(end)
            }
            end.removeLast()
        }
        return Data([0])   // every key
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dataEncodingStrategy = .base64
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dataDecodingStrategy = .base64
        return decoder
    }()
}

extension EtcdWire.Compare {
    /// `key` was created at `revision` (0: `key` does not exist).
    public static func created(_ key: String, at revision: Int64) -> Self {
        .init(result: "EQUAL", target: "CREATE", key: Data(key.utf8), create_revision: .init(revision))
    }

    /// `key` was last changed at `revision` (0: `key` does not exist).
    public static func modified(_ key: String, at revision: Int64) -> Self {
        .init(result: "EQUAL", target: "MOD", key: Data(key.utf8), mod_revision: .init(revision))
    }
}

extension EtcdWire.RequestOp {
    /// Sets `key` to `value`, bound to `lease` when given.
    public static func put(_ key: String, _ value: Data, lease: Int64? = nil) -> Self {
        .init(request_put: .init(key: Data(key.utf8), value: value, lease: lease.map(EtcdWire.Int64String.init)))
    }
}

extension EtcdWire.TxnRequest {
    public init(if compare: [EtcdWire.Compare], then success: [EtcdWire.RequestOp], else failure: [EtcdWire.RequestOp] = []) {
        self.init(compare: compare, success: success, failure: failure)
    }
}
