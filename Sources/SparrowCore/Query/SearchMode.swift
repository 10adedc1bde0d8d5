/// How a query asks to be answered.
public enum SearchMode: Sendable, Equatable {
    /// Every posting of the query's terms: the exact top k (the default).
    case exact
    /// The settings the shard calibrated for this target recall when it was built; exact when
    /// no setting reached it (or the shard has no calibration).
    case recall(Double)
    /// These settings.
    case settings(ApproximateSearch.Settings)

    /// The approximate settings to search with, or nil to search exactly.
    public func resolve(_ calibration: ApproximateCalibration?) -> ApproximateSearch.Settings? {
        switch self {
        case .exact: return nil
        case .recall(let target): return calibration?.settings(forRecall: target)
        case .settings(let settings): return settings
        }
    }

    /// Nil when the mode's values are in range; else what is wrong.
    public var problem: String? {
        switch self {
        case .exact: return nil
        case .recall(let target): return target > 0 && target <= 1 ? nil : "target recall must be above 0 and at most 1, not \(target)"
        case .settings(let settings): return settings.problem
        }
    }
}
