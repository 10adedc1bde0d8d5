import ArgumentParser
import Dispatch
import Foundation
import Logging
import SparrowClient
import SparrowSecurity
import SparrowWire

/// A process's certificate files (`sparrow certs`).
struct TLSFileOptions: ParsableArguments {
    @Option(help: "The cluster CA certificate (PEM): the peer's certificate must chain to it.")
    var tlsCa: String?

    @Option(help: "This process's certificate (PEM, `sparrow certs issue`); a server rereads it, its key and the CA on SIGHUP.")
    var tlsCert: String?

    @Option(help: "This process's private key (PEM).")
    var tlsKey: String?
}

/// A server's TLS and whether it may listen in the clear.
struct ServerSecurityOptions: ParsableArguments {
    @OptionGroup var files: TLSFileOptions

    @Flag(help: "Allow listening on a non-loopback address without TLS (and, for a coordinator, API keys). Anyone who reaches the port can then do anything.")
    var insecure = false

    /// The TLS material, when all three files are given.
    func identity() throws -> TLSIdentity? {
        switch (files.tlsCa, files.tlsCert, files.tlsKey) {
        case (nil, nil, nil): return nil
        case (let ca?, let certificate?, let key?): return try TLSIdentity(serverFiles: TLSFiles(ca: ca, certificate: certificate, key: key))
        default: throw ValidationError("--tls-ca, --tls-cert and --tls-key go together")
        }
    }

    /// Refuses a non-loopback `host` that lacks what `missing` names, unless `--insecure`.
    func checkExposure(host: String, missing: [String], logger: Logger) throws {
        guard !missing.isEmpty, !Self.isLoopback(host) else { return }
        guard insecure else {
            throw ValidationError(
                "refusing to listen on \(host) without \(missing.joined(separator: " and ")): anyone who reaches the port could read, change or destroy the cluster. Give them (see `sparrow certs` and `sparrow keys`), listen on 127.0.0.1, or pass --insecure")
        }
        logger.warning("listening without protection on a non-loopback address (--insecure)", metadata: ["listen.host": "\(host)", "missing": "\(missing)"])
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// How a command-line client reaches a coordinator: TLS (the CA, and an admin certificate for
/// `ctl`) and an API key.
struct ClientSecurityOptions: ParsableArguments {
    /// `--tls-ca` alone: TLS, checking the coordinator's certificate; with `--tls-cert` and
    /// `--tls-key`, also presenting one (an admin certificate for `ctl`).
    @OptionGroup var files: TLSFileOptions

    @Option(help: "API key (default: $SPARROW_API_KEY).")
    var apiKey: String?

    func security() throws -> ClientSecurity {
        guard (files.tlsCert == nil) == (files.tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard files.tlsCert == nil || files.tlsCa != nil else { throw ValidationError("--tls-cert needs --tls-ca") }
        let tls = try files.tlsCa.map { try TLSIdentity(files: TLSFiles(ca: $0, certificate: files.tlsCert, key: files.tlsKey)) }
        let key = apiKey ?? ProcessInfo.processInfo.environment["SPARROW_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        return ClientSecurity(tls: tls, expectedPeer: PeerExpectation(role: .coordinator), apiKey: key)
    }

    /// A client of the coordinator at `address`.
    func coordinator(_ address: String) throws -> ClusterClient {
        ClusterClient(try Endpoint(parsing: address), security: try security())
    }
}

enum CertificateReload {
    /// Rereads `identity`'s files on every SIGHUP: new handshakes use them; a failed reload keeps
    /// the old ones and says why.
    static func onHangup(_ identity: TLSIdentity?, logger: Logger) -> (any DispatchSourceSignal)? {
        guard let identity else { return nil }
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP)
        source.setEventHandler {
            do {
                try identity.reload()
                logger.notice("certificates reloaded", metadata: [
                    "tls.identity": "\(identity.identity.map { "\($0)" } ?? "-")", "tls.not_after": "\(identity.notValidAfter.map { "\($0)" } ?? "-")",
                ])
            } catch {
                logger.error("certificate reload failed; the old certificates stay in use", metadata: ["error": "\(error)"])
            }
        }
        source.resume()
        return source
    }
}
