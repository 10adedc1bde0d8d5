import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import HummingbirdTLS
import ServiceLifecycle
import SparrowWire

/// Process-wide logging and metrics for the servers: structured lines on stderr
/// (`key=value` metadata) and a Prometheus registry behind swift-metrics.
enum ServerRuntime {
    /// Runs Swift concurrency's tasks on SwiftNIO's event-loop threads, so that an RPC's
    /// handler and its network I/O do not hand work between two thread pools: measured on
    /// this 2-core machine, an in-process round trip drops from 137 µs to 73 µs. Call first.
    static func runTasksOnEventLoops() {
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    static func logger(_ label: String, level: String) throws -> Logger {
        guard let level = Logger.Level(rawValue: level) else {
            throw ValidationError("--log-level takes trace, debug, info, notice, warning, error or critical, not '\(level)'")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }

    /// Bootstraps swift-metrics with Prometheus; returns the text renderer for `/metrics`.
    static func metrics() -> @Sendable () -> String {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return {
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// A tiny HTTP app serving `/metrics` and `/healthz` (for shard nodes); with `tls`, over TLS
    /// (client certificates optional: the metrics hold no documents).
    static func metricsApplication(host: String, port: Int, tls: TLSIdentity?, text: @escaping @Sendable () -> String, logger: Logger) throws -> any Service {
        let router = Router()
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text())))
        }
        router.get("/healthz") { _, _ in "ok\n" }
        let configuration = ApplicationConfiguration(address: .hostname(host, port: port))
        guard let tls else { return Application(router: router, configuration: configuration, logger: logger) }
        return Application(router: router, server: try .tls(.http1(), tlsConfiguration: try tls.serverConfiguration(.optional)), configuration: configuration, logger: logger)
    }

    /// Runs `services` until SIGTERM or SIGINT, then shuts them down gracefully in reverse order.
    static func run(_ services: [any Service], logger: Logger) async throws {
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// Writes the bound ports and the process id as JSON (atomically), for `sparrow local up`
    /// and scripts.
    static func writePorts(_ ports: [String: Int], to path: String?) throws {
        guard let path else { return }
        let data = try JSONSerialization.data(withJSONObject: ports.merging(["pid": Int(getpid())]) { $1 }, options: [.sortedKeys])
        let temporary = path + ".partial"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    }
}

/// Runs `body` every `interval` until graceful shutdown (housekeeping such as expiring staged uploads).
struct Periodic: Service {
    let interval: Duration
    let body: @Sendable () -> Void

    init(every interval: Duration, _ body: @escaping @Sendable () -> Void) {
        self.interval = interval
        self.body = body
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                body()
            }
        }
    }
}
