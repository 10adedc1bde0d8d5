import SparrowWire
import Synchronization
import Testing

@Suite struct MetricHandlesTests {
    final class Handle: Sendable {
        let label: String
        let dimensions: [String]
        init(_ label: String, _ dimensions: [(String, String)]) {
            self.label = label
            self.dimensions = dimensions.map { "\($0.0)=\($0.1)" }
        }
    }

    @Test func makesEachHandleOnceAndKeepsDimensionsApart() {
        let made = Atomic<Int>(0)
        let handles = MetricHandles { label, dimensions in
            made.add(1, ordering: .relaxed)
            return Handle(label, dimensions)
        }
        let first = handles("requests", [("method", "Search"), ("code", "ok")])
        let again = handles("requests", [("method", "Search"), ("code", "ok")])
        let failed = handles("requests", [("method", "Search"), ("code", "internal")])
        // The same strings split differently between name and value are another handle.
        let shifted = handles("requests", [("methodSearch", ""), ("code", "ok")])
        let other = handles("latency", [("method", "Search"), ("code", "ok")])

        #expect(first === again)
        #expect(first !== failed && first !== shifted && first !== other)
        #expect(made.load(ordering: .relaxed) == 4)
        #expect(failed.dimensions == ["method=Search", "code=internal"])
        #expect(other.label == "latency")
    }
}
