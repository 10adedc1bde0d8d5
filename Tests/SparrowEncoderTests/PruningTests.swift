import SparrowCore
import SparrowEncoder
import Testing

@Test func pruningSpecsParseAndPrintCanonically() throws {
    #expect(try Pruning(parsing: "none") == .none)
    #expect(try Pruning(parsing: "max_ratio=0.1") == .maxRatio(0.1))
    #expect(try Pruning(parsing: "top_k=64") == .topK(64))
    #expect(try Pruning(parsing: "abs_value=0.5").description == "abs_value=0.5")
    for bad in ["", "top_k=0", "max_ratio=2", "abs=1", "top_k=x"] {
        #expect(throws: EncoderError.self) { try Pruning(parsing: bad) }
    }
}

@Test func pruningRulesKeepTheRightEntries() {
    let v = SparseVector(pairs: [(1, 0.2), (2, 1.0), (3, 0.5), (4, 0.5), (5, 0.05)])
    #expect(Pruning.none.apply(to: v) == v)
    #expect(Pruning.maxRatio(0.4).apply(to: v).terms == [2, 3, 4])
    #expect(Pruning.absValue(0.2).apply(to: v).terms == [1, 2, 3, 4])
    #expect(Pruning.topK(2).apply(to: v).terms == [2, 3], "ties keep the smaller token id")
}
