import Foundation
import SparrowEncoder
import Testing

@Test func inferenceFreeQueryWeightsMatchFixtures() throws {
    let tokenizer = try WordPieceTokenizer.load(modelDirectory: Shared.spladeTiny)
    let idf = try IDFTable.load(path: Shared.path("models/msmarco-idf/idf.json"), vocabulary: tokenizer.vocabulary)
    let encoder = QueryEncoder(tokenizer: tokenizer, idf: idf)
    let records = try Shared.jsonl("fixtures/encoder/query_idf.jsonl")
    #expect(records.count > 300)
    for record in records {
        let text = try #require(record["text"] as? String)
        let expected = try #require(record["weights"] as? [String: Any])
        let vector = encoder.encode(text)
        let actual = Dictionary(uniqueKeysWithValues: vector.entries.map { (tokenizer.vocabulary.tokens[Int($0.0)], $0.1) })
        #expect(Set(actual.keys) == Set(expected.keys), "token set differs for \(text)")
        for (token, weight) in expected {
            let want = (weight as! NSNumber).floatValue
            #expect(abs((actual[token] ?? -1) - want) <= 1e-6, "\(text): \(token)")
        }
    }
}

@Test func tokensMissingFromTheTableWeighOne() throws {
    let tokenizer = try WordPieceTokenizer.load(modelDirectory: Shared.spladeTiny)
    let encoder = QueryEncoder(tokenizer: tokenizer, idf: IDFTable(weights: []))
    let vector = encoder.encode("hello hello world [CLS]")
    #expect(vector.count == 2)
    #expect(vector.weights == [1, 1])
}

@Test func corpusIDFFollowsTheBM25Formula() {
    var counter = IDFCounter(vocabularySize: 10, special: [0])
    counter.add(tokens: [0, 1, 2, 2])
    counter.add(tokens: [0, 2, 3])
    counter.add(tokens: [3])
    let table = counter.table
    func idf(_ df: Double) -> Float { Float(log(1 + (3 - df + 0.5) / (df + 0.5))) }
    #expect(counter.documentFrequency[0] == 0, "special tokens are not counted")
    #expect(abs(table[1] - idf(1)) < 1e-6)
    #expect(abs(table[2] - idf(2)) < 1e-6)
    #expect(abs(table[3] - idf(2)) < 1e-6)
    #expect(table[2] < table[1])
}
