import Foundation
import SparrowIO
import Testing

@Test func readsPlainAndGzipLinesWithCRLFAndNoTrailingNewline() throws {
    let dir = NSTemporaryDirectory() + "sparrow-io-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for name in ["a.txt", "a.txt.gz"] {
        let path = dir + "/" + name
        let out = try AtomicOutputFile(path: path)
        try out.write("one\r\ntwo\n\nthree")
        try out.commit()
        let reader = try LineReader(path: path)
        var lines: [String] = []
        while let line = try reader.nextLine() { lines.append(String(decoding: line, as: UTF8.self)) }
        #expect(lines == ["one", "two", "", "three"])
        #expect(reader.lineNumber == 4)
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["a.txt", "a.txt.gz"])
}

@Test func uncommittedOutputLeavesNothingBehind() throws {
    let dir = NSTemporaryDirectory() + "sparrow-io-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    do {
        let out = try AtomicOutputFile(path: dir + "/v.jsonl")
        try out.write("partial\n")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
}

@Test func missingInputIsNamed() {
    #expect(throws: IOError.cannotOpen(path: "/nonexistent/x.jsonl", reason: "no such file")) {
        try LineReader(path: "/nonexistent/x.jsonl")
    }
}
