import Foundation

/// Prints a progress line to stderr at most once per `interval`: items, rate and ETA.
public final class ProgressReporter {
    private let label: String
    private let total: Int?
    private let interval: TimeInterval
    private let start = Date()
    private var lastPrint = Date.distantPast
    private let enabled: Bool

    public init(label: String, total: Int?, interval: TimeInterval = 1, enabled: Bool = true) {
        self.label = label
        self.total = total
        self.interval = interval
        self.enabled = enabled
    }

    /// Seconds since the reporter was created.
    public var elapsed: TimeInterval { Date().timeIntervalSince(start) }

    /// Reports `done` items; prints when the interval has passed or `final` is set.
    public func update(_ done: Int, final: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard final || now.timeIntervalSince(lastPrint) >= interval else { return }
        lastPrint = now
        let seconds = max(now.timeIntervalSince(start), 1e-9)
        let rate = Double(done) / seconds
        var line = "\(label): \(done)"
        if let total { line += "/\(total)" }
        line += String(format: " docs, %.1f docs/s", rate)
        if let total, rate > 0, !final {
            line += ", ETA " + Self.duration(Double(max(total - done, 0)) / rate)
        }
        if final { line += ", " + Self.duration(seconds) + " total" }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}
