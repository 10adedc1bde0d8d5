import SparrowBuilder
import Testing

@Suite struct ProgressTests {
    @Test func documentsAndBytesWithRateAndETA() {
        let documents = ProgressReporter(label: "read", total: 200, enabled: false)
        #expect(documents.line(100, seconds: 2, final: false) == "read: 100/200 docs, 50.0 docs/s, ETA 2s")
        #expect(documents.line(200, seconds: 4, final: true) == "read: 200/200 docs, 50.0 docs/s, 4s total")
        let bytes = ProgressReporter(label: "load: shard-0 → node-1", total: 40_000_000, unit: .bytes, enabled: false)
        #expect(bytes.line(12_000_000, seconds: 2, final: false) == "load: shard-0 → node-1: 12.0/40.0 MB, 6.0 MB/s, ETA 5s")
        // A resumed copy: what was there before does not count towards the rate.
        let resumed = ProgressReporter(label: "copy", total: 40_000_000, unit: .bytes, initial: 30_000_000, enabled: false)
        #expect(resumed.line(32_000_000, seconds: 2, final: false) == "copy: 32.0/40.0 MB, 1.0 MB/s, ETA 8s")
        let unknown = ProgressReporter(label: "idf", total: nil, enabled: false)
        #expect(unknown.line(3000, seconds: 1, final: false) == "idf: 3000 docs, 3000.0 docs/s")
    }
}
