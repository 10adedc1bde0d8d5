import SparrowCore
import Testing

@Test func pairsAreSortedDeduplicatedAndZerosDropped() {
    let v = SparseVector(pairs: [(5, 1.0), (2, 0.5), (5, 3.0), (9, 0)])
    #expect(v.terms == [2, 5])
    #expect(v.weights == [0.5, 3.0])
    #expect(v[5] == 3.0)
    #expect(v[9] == 0)
    #expect(v[1] == 0)
}

@Test func dotProductMatchesDenseSum() {
    let a = SparseVector(pairs: [(1, 2), (3, 4), (7, 1)])
    let b = SparseVector(pairs: [(3, 0.5), (7, 2), (8, 9)])
    #expect(a.dot(b) == 4 * 0.5 + 1 * 2)
    #expect(a.dot(SparseVector()) == 0)
}

@Test func jsonQuotingEscapesControlCharacters() {
    #expect(JSONText.quoted("a\"b\\c\n\u{01}") == "\"a\\\"b\\\\c\\n\\u0001\"")
    #expect(JSONText.quoted("##é") == "\"##é\"")
}
