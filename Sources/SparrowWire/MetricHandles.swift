import Synchronization

/// swift-metrics handles (`Counter`, `Timer`, …) made once per label and dimensions. Making
/// one asks the metrics factory every time (for Prometheus: a name check, a lock and a
/// registry lookup); per request that was about 4% of a shard node's CPU on a Health call.
public final class MetricHandles<Handle: Sendable>: Sendable {
    private struct Key: Hashable {
        var label: String
        var dimensions: [String]
    }

    private let made = Mutex<[Key: Handle]>([:])
    private let make: @Sendable (String, [(String, String)]) -> Handle

    /// `make` creates the handle the first time a label and dimensions are asked for.
    public init(_ make: @escaping @Sendable (_ label: String, _ dimensions: [(String, String)]) -> Handle) {
        self.make = make
    }

    public func callAsFunction(_ label: String, _ dimensions: [(String, String)] = []) -> Handle {
        var flat: [String] = []
        flat.reserveCapacity(dimensions.count * 2)
        for (name, value) in dimensions {
            flat.append(name)
            flat.append(value)
        }
        let key = Key(label: label, dimensions: flat)
        return made.withLock { made in
            if let handle = made[key] { return handle }
            let handle = make(label, dimensions)
            made[key] = handle
            return handle
        }
    }
}
