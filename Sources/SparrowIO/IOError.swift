/// File-level failures, each naming the file (and line where there is one).
public enum IOError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case readFailed(path: String, reason: String)
    case writeFailed(path: String, reason: String)
    /// A line that is not what the format expects.
    case malformedLine(path: String, line: Int, reason: String)

    /// A stable machine-readable code for the error kind.
    public var code: String {
        switch self {
        case .cannotOpen: "io.cannot_open"
        case .readFailed: "io.read_failed"
        case .writeFailed: "io.write_failed"
        case .malformedLine: "io.malformed_line"
        }
    }

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): "\(path): cannot open (\(reason))"
        case let .readFailed(path, reason): "\(path): read failed (\(reason))"
        case let .writeFailed(path, reason): "\(path): write failed (\(reason))"
        case let .malformedLine(path, line, reason): "\(path):\(line): \(reason)"
        }
    }
}
