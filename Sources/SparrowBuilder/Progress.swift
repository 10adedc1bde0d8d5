import Foundation

/// Prints a progress line to stderr at most once per `interval`: how much is done (of the
/// total, when known), the rate and the ETA.
public final class ProgressReporter {
    /// What is counted: documents ("1200/5000 docs, 310.2 docs/s") or bytes ("12.0/40.0 MB, 5.1 MB/s").
    public enum Unit: Sendable {
        case documents
        case bytes

        func amount(_ count: Int) -> String {
            switch self {
            case .documents: "\(count)"
            case .bytes: String(format: "%.1f", Double(count) / 1e6)
            }
        }

        var name: String {
            switch self {
            case .documents: "docs"
            case .bytes: "MB"
            }
        }

        func rate(_ perSecond: Double) -> String {
            switch self {
            case .documents: String(format: "%.1f docs/s", perSecond)
            case .bytes: String(format: "%.1f MB/s", perSecond / 1e6)
            }
        }
    }

    private let label: String
    private let total: Int?
    private let unit: Unit
    private let interval: TimeInterval
    private let start = Date()
    private var lastPrint = Date.distantPast
    /// Counted before this reporter started (a resumed copy): not part of the rate.
    private let initial: Int
    private let enabled: Bool

    public init(label: String, total: Int?, unit: Unit = .documents, initial: Int = 0, interval: TimeInterval = 1, enabled: Bool = true) {
        self.label = label
        self.total = total
        self.unit = unit
        self.initial = initial
        self.interval = interval
        self.enabled = enabled
    }

    /// Seconds since the reporter was created.
    public var elapsed: TimeInterval { Date().timeIntervalSince(start) }

    /// Reports `done`; prints when the interval has passed or `final` is set.
    public func update(_ done: Int, final: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard final || now.timeIntervalSince(lastPrint) >= interval else { return }
        lastPrint = now
        FileHandle.standardError.write(Data((line(done, seconds: now.timeIntervalSince(start), final: final) + "\n").utf8))
    }

    /// The progress line for `done` after `seconds`.
    public func line(_ done: Int, seconds: TimeInterval, final: Bool) -> String {
        let rate = Double(max(done - initial, 0)) / max(seconds, 1e-9)
        var line = "\(label): \(unit.amount(done))"
        if let total { line += "/\(unit.amount(total))" }
        line += " \(unit.name), \(unit.rate(rate))"
        if let total, rate > 0, !final {
            line += ", ETA " + Self.duration(Double(max(total - done, 0)) / rate)
        }
        if final { line += ", " + Self.duration(seconds) + " total" }
        return line
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}
