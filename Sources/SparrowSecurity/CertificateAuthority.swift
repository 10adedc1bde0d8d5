import Crypto
import Foundation
import SwiftASN1
import X509

/// The cluster's certificate authority: a P-256 key and a self-signed CA certificate, and the
/// role certificates it issues (`sparrow certs`). Every certificate is X.509 v3 made with
/// swift-certificates and signed with ECDSA P-256 / SHA-256.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// A new CA named `name`, valid for `days`.
    public static func create(name: String = "Sparrow cluster CA", days: Int = 3650, now: Date = Date()) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("Sparrow")
            CommonName(name)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        return CertificateAuthority(certificate: certificate, key: key)
    }

    /// Loads a CA written by `save`.
    public static func load(certificatePath: String, keyPath: String) throws -> CertificateAuthority {
        let certificate = try Certificate(pemEncoded: try SecurityFiles.read(certificatePath))
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: try SecurityFiles.read(keyPath))
        } catch let error as SecurityError {
            throw error
        } catch {
            throw SecurityError.badFile(keyPath, "not a PEM P-256 private key (\(error))")
        }
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw SecurityError.badFile(keyPath, "this key does not belong to the CA certificate \(certificatePath)")
        }
        return CertificateAuthority(certificate: certificate, key: key)
    }

    /// Writes the CA certificate (readable by all) and its key (owner only).
    public func save(certificatePath: String, keyPath: String) throws {
        try SecurityFiles.write(try certificate.serializeAsPEM().pemString, to: certificatePath, private: false)
        try SecurityFiles.write(key.pemRepresentation, to: keyPath, private: true)
    }

    /// A certificate for `identity`, valid for `days`, naming `hosts` (DNS names or IP addresses)
    /// for the clients that check them. Usable for both ends of a connection (server and client
    /// authentication), as a cluster process is both.
    public func issue(_ identity: PeerIdentity, hosts: [String], days: Int, now: Date = Date()) throws -> IssuedCertificate {
        guard days > 0 else { throw SecurityError.invalid("--days must be at least 1, not \(days)") }
        let key = P256.Signing.PrivateKey()
        var names: [GeneralName] = [.uniformResourceIdentifier(identity.uri)]
        for host in hosts {
            if let address = IPAddressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address.bytes))))
            } else {
                names.append(.dnsName(host))
            }
        }
        let subject = try DistinguishedName {
            OrganizationName("Sparrow")
            OrganizationalUnitName(identity.role.rawValue)
            CommonName(identity.id)
        }
        let notAfter = min(now.addingTimeInterval(Double(days) * 86_400), certificate.notValidAfter)
        let issued = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: notAfter,
            issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: .init(key.publicKey))
                AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(self.key))
        return IssuedCertificate(certificate: issued, key: key)
    }
}

/// A role certificate and its private key.
public struct IssuedCertificate: Sendable {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    public func save(certificatePath: String, keyPath: String) throws {
        try SecurityFiles.write(try certificate.serializeAsPEM().pemString, to: certificatePath, private: false)
        try SecurityFiles.write(key.pemRepresentation, to: keyPath, private: true)
    }
}

extension Certificate {
    /// The Sparrow identity a certificate names (its `sparrow://role/id` URI), if any.
    public var sparrowIdentity: PeerIdentity? {
        guard let names = try? extensions.subjectAlternativeNames else { return nil }
        for name in names {
            if case .uniformResourceIdentifier(let uri) = name, let identity = PeerIdentity(uri: uri) { return identity }
        }
        return nil
    }
}

/// An IPv4 or IPv6 address in network byte order, for a certificate's IP subject names.
struct IPAddressBytes {
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }
}
