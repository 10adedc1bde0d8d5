import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import SparrowSecurity
import Synchronization

/// A client of etcd's v3 API through its JSON gateway (`POST /v3/…`), with async-http-client.
/// It talks to one endpoint at a time and moves to the next when a call finds it down or
/// without a quorum; `endpointChanges` counts those moves, so that a watch on the old endpoint
/// can start again elsewhere.
///
/// Why the gateway and not gRPC: it ships in every etcd 3.x server, it needs no generated code
/// (etcd's protos import gogoproto and Google API annotations), and async-http-client builds in
/// a fraction of grpc-swift-2's time; the calls Sparrow makes are few and small.
public final class EtcdClient: Sendable {
    public let endpoints: [String]
    private let http: HTTPClient
    private let current = Atomic<Int>(0)
    private let moves = Atomic<Int>(0)
    /// How long one call may take on one endpoint.
    public let callTimeout: Duration
    private let logger: Logger
    /// The largest answer accepted (a map is a few kilobytes; a range of every key more).
    static let maxResponseBytes = 16 << 20

    /// TLS to etcd: the CA its servers' certificates chain to, and this process's certificate
    /// and key when etcd asks for client certificates (`--client-cert-auth`).
    /// A client of the etcd cluster at `endpoints` (`http://host:port` or `https://…`, tried in order).
    public init(endpoints: [String], tls: TLSFiles? = nil, callTimeout: Duration = .seconds(2), logger: Logger) throws {
        guard !endpoints.isEmpty else { throw EtcdError.configuration("no etcd endpoint given") }
        for endpoint in endpoints {
            guard let url = URL(string: endpoint), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw EtcdError.configuration("'\(endpoint)' is not an etcd endpoint (http://host:port or https://host:port)")
            }
            if url.scheme == "https" && tls == nil {
                throw EtcdError.configuration("\(endpoint) is https: give the etcd CA (--etcd-ca)")
            }
        }
        self.endpoints = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.callTimeout = callTimeout
        self.logger = logger
        var configuration = HTTPClient.Configuration()
        if let tls {
            var settings = TLSConfiguration.makeClientConfiguration()
            settings.trustRoots = .file(tls.ca)
            if let certificate = tls.certificate, let key = tls.key {
                do {
                    settings.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                    settings.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } catch {
                    throw EtcdError.configuration("cannot read the etcd client certificate \(certificate) or key \(key): \(error)")
                }
            }
            configuration.tlsConfiguration = settings
        }
        configuration.timeout = .init(connect: .milliseconds(Int64(callTimeout.milliseconds)), read: nil)
        configuration.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// How many times calls have moved to another endpoint so far.
    public var endpointChanges: Int { moves.load(ordering: .relaxed) }

    /// The endpoint calls go to now.
    public var currentEndpoint: String { endpoints[current.load(ordering: .relaxed) % endpoints.count] }

    public func shutdown() async {
        try? await http.shutdown()
    }

    // MARK: Key-value

    /// The value of `key`, with its revisions (nil: no such key), and the store's revision.
    public func get(_ key: String) async throws -> (kv: EtcdWire.KeyValue?, revision: Int64) {
        let response: EtcdWire.RangeResponse = try await call("/v3/kv/range", EtcdWire.RangeRequest(key: Data(key.utf8)))
        return (response.kvs?.first, response.header?.revision?.value ?? 0)
    }

    /// Every key under `prefix`, oldest created first, and the store's revision.
    public func list(prefix: String) async throws -> (kvs: [EtcdWire.KeyValue], revision: Int64) {
        let start = Data(prefix.utf8)
        let request = EtcdWire.RangeRequest(key: start, range_end: EtcdWire.prefixEnd(start), sort_order: "ASCEND", sort_target: "CREATE")
        let response: EtcdWire.RangeResponse = try await call("/v3/kv/range", request)
        return (response.kvs ?? [], response.header?.revision?.value ?? 0)
    }

    /// A transaction: if every `compare` holds, `success` runs, else `failure`.
    public func txn(_ request: EtcdWire.TxnRequest) async throws -> EtcdWire.TxnResponse {
        try await call("/v3/kv/txn", request)
    }

    // MARK: Leases

    /// A new lease of `ttl` seconds; its id and the TTL etcd granted.
    public func grantLease(ttl: Int) async throws -> (id: Int64, ttl: Int) {
        let response: EtcdWire.LeaseGrantResponse = try await call("/v3/lease/grant", EtcdWire.LeaseGrantRequest(TTL: .init(Int64(ttl))))
        if let error = response.error, !error.isEmpty { throw EtcdError.refused(endpoint: currentEndpoint, code: 0, message: error) }
        guard let id = response.ID?.value, let granted = response.TTL?.value else {
            throw EtcdError.malformed(endpoint: currentEndpoint, path: "/v3/lease/grant", reason: "no lease id or TTL")
        }
        return (id, Int(granted))
    }

    /// Renews `lease`, giving each endpoint `timeout` (default: `callTimeout`); the seconds it
    /// now has left (0: it has expired or was revoked).
    ///
    /// A renewal counts only once the member that made it has shown, after making it, that it
    /// still speaks for a quorum: etcd's leader renews leases on its own, and a leader cut off
    /// from the others goes on renewing until its quorum check deposes it, up to two election
    /// timeouts later, while the others may already have elected a leader that lets the lease
    /// run out. So a linearizable read follows on the same member (its ReadIndex needs a
    /// majority's answer); a member that cannot give one is left for the next.
    public func keepAlive(lease: Int64, timeout: Duration? = nil) async throws -> Int {
        let (response, endpoint): (EtcdWire.Streamed<EtcdWire.LeaseKeepAliveResponse>, String) =
            try await exchange("/v3/lease/keepalive", EtcdWire.LeaseID(ID: .init(lease)), timeout: timeout)
        if let error = response.error { throw EtcdError.refused(endpoint: endpoint, code: error.code ?? 0, message: error.message ?? error.error ?? "") }
        do {
            let _: EtcdWire.RangeResponse = try await call("/v3/kv/range", EtcdWire.RangeRequest(key: Data("\0".utf8), count_only: true), at: endpoint, timeout: timeout)
        } catch {
            moveOn(from: endpoint, because: "no quorum behind its lease renewal: \(error)")
            throw error
        }
        return Int(response.result?.TTL?.value ?? 0)
    }

    /// The seconds `lease` has left (nil: it has expired or never existed).
    public func timeToLive(lease: Int64) async throws -> Int? {
        let response: EtcdWire.LeaseTimeToLiveResponse = try await call("/v3/lease/timetolive", EtcdWire.LeaseID(ID: .init(lease)))
        guard let ttl = response.TTL?.value, ttl >= 0 else { return nil }
        return Int(ttl)
    }

    /// Ends `lease` now: the keys bound to it go.
    public func revoke(lease: Int64) async throws {
        let _: EtcdWire.DeleteRangeResponse = try await call("/v3/lease/revoke", EtcdWire.LeaseID(ID: .init(lease)))
    }

    // MARK: Cluster

    /// The status of one member, asked at its own endpoint (not through the others).
    public func status(of endpoint: String) async throws -> EtcdWire.StatusResponse {
        try await call("/v3/maintenance/status", [String: String](), at: endpoint)
    }

    // MARK: Watch

    /// One answer of a watch: the events since the last, and the store's revision.
    public struct WatchBatch: Sendable {
        public var revision: Int64
        public var events: [EtcdWire.Event]
    }

    /// Watches every key under `prefix` from `revision` on (0: from now), on the current endpoint.
    /// Each batch of events is handed to `body` in order; returns when the stream ends (the
    /// endpoint went away, or etcd canceled the watch) and throws on errors. Cancel the task to stop.
    public func watch(prefix: String, from revision: Int64, _ body: (WatchBatch) async throws -> Void) async throws {
        let start = Data(prefix.utf8)
        let create = EtcdWire.WatchRequest(create_request: .init(key: start, range_end: EtcdWire.prefixEnd(start), start_revision: revision > 0 ? .init(revision) : nil))
        let endpoint = currentEndpoint
        let response: HTTPClientResponse
        do {
            response = try await http.execute(try request(endpoint, "/v3/watch", create), deadline: .now() + .hours(24), logger: logger)
        } catch {
            moveOn(from: endpoint, because: error)
            throw EtcdError.unavailable(attempts: ["\(endpoint): \(error)"])
        }
        guard response.status == .ok else {
            throw EtcdError.refused(endpoint: endpoint, code: Int(response.status.code), message: "HTTP \(response.status) to /v3/watch")
        }
        var pending = ByteBuffer()
        for try await chunk in response.body {
            var chunk = chunk
            pending.writeBuffer(&chunk)
            while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let length = newline - pending.readerIndex
                let line = pending.readSlice(length: length)!
                pending.moveReaderIndex(forwardBy: 1)
                guard line.readableBytes > 0 else { continue }
                let message: EtcdWire.Streamed<EtcdWire.WatchResponse>
                do {
                    message = try EtcdWire.decoder.decode(EtcdWire.Streamed<EtcdWire.WatchResponse>.self, from: Data(line.readableBytesView))
                } catch {
                    throw EtcdError.malformed(endpoint: endpoint, path: "/v3/watch", reason: "\(error)")
                }
                if let error = message.error {
                    throw EtcdError.refused(endpoint: endpoint, code: error.code ?? 0, message: error.message ?? error.error ?? "")
                }
                guard let result = message.result else { continue }
                if result.canceled == true {
                    throw EtcdError.refused(endpoint: endpoint, code: 0, message: "watch canceled: \(result.cancel_reason ?? "compacted at \(result.compact_revision?.value ?? 0)")")
                }
                if result.created == true && (result.events ?? []).isEmpty { continue }
                try await body(WatchBatch(revision: result.header?.revision?.value ?? 0, events: result.events ?? []))
            }
            guard pending.readableBytes <= Self.maxResponseBytes else {
                throw EtcdError.malformed(endpoint: endpoint, path: "/v3/watch", reason: "a message over \(Self.maxResponseBytes) bytes")
            }
            pending.discardReadBytes()
        }
    }

    // MARK: Calls

    /// POSTs `body` to `path`, on the current endpoint and then on each other one while they
    /// are down (connection refused, timed out, no leader); decodes the answer.
    func call<Request: Encodable, Response: Decodable>(_ path: String, _ body: Request, at fixed: String? = nil, timeout: Duration? = nil) async throws -> Response {
        try await exchange(path, body, at: fixed, timeout: timeout).response
    }

    /// `call`, also naming the endpoint that answered.
    private func exchange<Request: Encodable, Response: Decodable>(_ path: String, _ body: Request, at fixed: String? = nil, timeout: Duration? = nil) async throws -> (response: Response, endpoint: String) {
        let timeout = TimeAmount.milliseconds(Int64((timeout ?? callTimeout).milliseconds))
        var attempts: [String] = []
        let first = current.load(ordering: .relaxed)
        for offset in 0..<(fixed == nil ? endpoints.count : 1) {
            let endpoint = fixed ?? endpoints[(first + offset) % endpoints.count]
            do {
                let response = try await http.execute(try request(endpoint, path, body), timeout: timeout, logger: logger)
                let bytes = try await response.body.collect(upTo: Self.maxResponseBytes)
                let data = Data(bytes.readableBytesView)
                guard response.status == .ok else {
                    let error = try? EtcdWire.decoder.decode(EtcdWire.GatewayError.self, from: data)
                    let message = error?.message ?? error?.error ?? String(decoding: data.prefix(512), as: UTF8.self)
                    // Unavailable (14) or a server-side timeout: this member cannot serve now (no
                    // leader, no quorum); another might.
                    if response.status.code >= 500 || error?.code == 14 || error?.code == 4 {
                        attempts.append("\(endpoint): \(message)")
                        if fixed == nil { moveOn(from: endpoint, because: message) }
                        continue
                    }
                    throw EtcdError.refused(endpoint: endpoint, code: error?.code ?? Int(response.status.code), message: message)
                }
                do {
                    return (try EtcdWire.decoder.decode(Response.self, from: data), endpoint)
                } catch {
                    throw EtcdError.malformed(endpoint: endpoint, path: path, reason: "\(error)")
                }
            } catch let error as EtcdError {
                throw error
            } catch {
                attempts.append("\(endpoint): \(error)")
                if fixed == nil { moveOn(from: endpoint, because: error) }
            }
        }
        throw EtcdError.unavailable(attempts: attempts)
    }

    private func request<Body: Encodable>(_ endpoint: String, _ path: String, _ body: Body) throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try EtcdWire.encoder.encode(body)))
        return request
    }

    /// Moves calls to the endpoint after `endpoint`, unless another call did already.
    private func moveOn(from endpoint: String, because reason: Any) {
        guard let index = endpoints.firstIndex(of: endpoint), endpoints.count > 1 else { return }
        let (exchanged, _) = current.compareExchange(expected: index, desired: (index + 1) % endpoints.count, ordering: .relaxed)
        if exchanged {
            moves.add(1, ordering: .relaxed)
            logger.warning("etcd endpoint failed; using the next", metadata: ["etcd.endpoint": "\(endpoint)", "etcd.next": "\(endpoints[(index + 1) % endpoints.count])", "error": "\(reason)"])
        }
    }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
