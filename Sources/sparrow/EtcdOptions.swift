import ArgumentParser
import Foundation
import Logging
import SparrowCoordinator
import SparrowEtcd
import SparrowSecurity

/// Where the cluster map lives in etcd, and how to reach etcd.
struct EtcdOptions: ParsableArguments {
    @Option(help: "etcd endpoints, comma-separated (http://host:2379 or https://…): keep the cluster map there, shared by every coordinator of --cluster-name, instead of in a file.")
    var etcd: String?

    @Option(help: "The cluster's name in etcd: its keys are under /sparrow/NAME/.")
    var clusterName: String?

    @Option(help: "The CA that etcd's server certificates chain to (PEM).")
    var etcdCa: String?

    @Option(help: "This process's client certificate for etcd (PEM), when etcd asks for one (--client-cert-auth).")
    var etcdCert: String?

    @Option(help: "The client certificate's private key (PEM).")
    var etcdKey: String?

    var endpoints: [String] { (etcd ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }

    func validate() throws {
        guard etcd != nil else {
            guard clusterName == nil, etcdCa == nil, etcdCert == nil, etcdKey == nil else {
                throw ValidationError("--cluster-name and --etcd-ca/--etcd-cert/--etcd-key go with --etcd")
            }
            return
        }
        guard !endpoints.isEmpty else { throw ValidationError("--etcd names no endpoint") }
        guard clusterName != nil else { throw ValidationError("--etcd needs --cluster-name: the name under which the cluster's keys are kept") }
        guard (etcdCert == nil) == (etcdKey == nil) else { throw ValidationError("--etcd-cert and --etcd-key go together") }
        guard etcdCert == nil || etcdCa != nil else { throw ValidationError("--etcd-cert needs --etcd-ca") }
    }

    /// The client, when `--etcd` is given.
    func client(logger: Logger) throws -> EtcdClient? {
        guard etcd != nil else { return nil }
        let tls = etcdCa.map { TLSFiles(ca: $0, certificate: etcdCert, key: etcdKey) }
        return try EtcdClient(endpoints: endpoints, tls: tls, logger: logger)
    }

    /// The cluster's map store in etcd, when `--etcd` is given.
    func store(logger: Logger) throws -> EtcdMapStore? {
        guard let client = try client(logger: logger), let clusterName else { return nil }
        return try EtcdMapStore(client: client, cluster: clusterName)
    }
}
