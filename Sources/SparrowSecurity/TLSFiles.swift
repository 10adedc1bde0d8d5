/// A process's certificate files: the cluster CA that every peer's certificate must chain to,
/// and its own certificate and private key (`sparrow certs issue`). A client that authenticates
/// by API key may have no certificate of its own: it only checks the server's.
public struct TLSFiles: Sendable, Equatable {
    public var ca: String
    public var certificate: String?
    public var key: String?

    public init(ca: String, certificate: String?, key: String?) {
        self.ca = ca
        self.certificate = certificate
        self.key = key
    }
}
