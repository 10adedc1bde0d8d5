import CLibFuzzer
import Foundation
import Logging

/// libFuzzer's callback: one input, `size` bytes at `data`.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs libFuzzer's driver on `callback`, with the flags and corpus directories of the command
/// line, and exits with its status. Each target's `main.swift` calls it: SwiftPM links an
/// executable's top-level code as its `main`, in place of the one libFuzzer's runtime brings
/// (which would call `LLVMFuzzerTestOneInput`, which each target also defines).
public func runLibFuzzer(_ callback: FuzzCallback) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}

/// The input libFuzzer hands over, as bytes (it may pass no pointer for an empty input).
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Stops the run when a property the code promises does not hold: a bug, which libFuzzer
/// reports with its input. Never for input that is merely invalid: the code under test must
/// answer that with an error, and the targets check that it does.
public func invariant(_ holds: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    guard !holds else { return }
    fatalError("invariant broken: \(message())", file: file, line: line)
}

/// Logs nothing: a target makes millions of calls, and servers log every connection they close.
public let quietLogger = Logger(label: "sparrow.fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
