import SparrowCore
import Testing

@Suite struct ApproximateSearchTests {
    static let shape = CorpusShape(documents: 5000, vocabulary: 800, termsPerDocument: 40, skewed: true, coarseWeights: false, seed: 21)

    @Test("impact tiers: a partition of the list, documents ascending in each tier, weights descending across tiers")
    func tiers() {
        var rng = SplitMix64(seed: 3)
        var docs = (0..<3000).map { UInt32($0 * 3) }
        var codes = docs.map { _ in UInt8.random(in: 1...255, using: &rng) }
        let original = Set(zip(docs, codes).map { "\($0.0):\($0.1)" })
        let ends = ImpactTiers.split(docs: &docs, codes: &codes)
        #expect(ends.count > 1 && ends.count <= ImpactTiers.maxTiers && ends.last == docs.count)
        #expect(Set(zip(docs, codes).map { "\($0.0):\($0.1)" }) == original)
        let list = PostingList(docs: docs, weights: codes, tierEnds: ends)
        for (index, tier) in list.tiers.enumerated() {
            let start = list.start(ofTier: index).posting
            #expect(zip(docs[start..<tier.end], docs[start..<tier.end].dropFirst()).allSatisfy { $0 < $1 })
            if index > 0 { #expect(list.tiers[index - 1].minWeight > tier.maxWeight) }
        }
    }

    @Test("threshold 0 reads every posting: the exact answer, whatever the heap factor and the slices")
    func thresholdZeroIsExact() {
        let index = InvertedIndex(vectors: Self.shape.corpus())
        let forward = ForwardIndex(index)
        for query in Self.shape.queries(40) {
            let quantized = QuantizedQuery(query, documents: index.quantizer)
            let exact = ExhaustiveSearch().search(quantized, in: index, k: 10, filter: nil)
            // One slice of documents, and slices of 700 (not dividing the 5,000 evenly).
            for (search, heapFactor) in [(ApproximateSearch(), 0.5), (ApproximateSearch(slice: 700), 1.0), (ApproximateSearch(slice: 700), 0.5)] {
                let (hits, work) = search.search(quantized, in: index, forward: forward, k: 10, filter: nil, settings: .init(threshold: 0, heapFactor: heapFactor))
                #expect(hits == exact)
                #expect(work.postingsRead == index.postings(of: quantized).reduce(0) { $0 + $1.list.count })
            }
        }
    }

    @Test("an approximate answer holds exact scores, honours the filter, and its recall is measured (it reads fewer postings than exact)")
    func recallIsMeasured() {
        let index = InvertedIndex(vectors: Self.shape.corpus())
        let forward = ForwardIndex(index)
        var filter = DocumentFilter(count: index.documentCount, allowed: true)
        for doc in stride(from: 0, to: index.documentCount, by: 3) { filter.remove(UInt32(doc)) }
        let search = ApproximateSearch()
        var found = 0
        var wanted = 0
        var read = 0
        var total = 0
        for query in Self.shape.queries(60) {
            let quantized = QuantizedQuery(query, documents: index.quantizer)
            let exact = ExhaustiveSearch().search(quantized, in: index, k: 10, filter: filter)
            let all = ExhaustiveSearch().search(quantized, in: index, k: index.documentCount, filter: nil)
            let scoreOf = Dictionary(uniqueKeysWithValues: all.map { ($0.doc, $0.score) })
            let (hits, work) = search.search(quantized, in: index, forward: forward, k: 10, filter: filter, settings: .init(threshold: 0.2, heapFactor: 0.7))
            for hit in hits {
                #expect(filter.contains(hit.doc))
                #expect(scoreOf[hit.doc] == hit.score)
            }
            #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.ranksBefore($1) })
            found += Set(hits.map(\.doc)).intersection(exact.map(\.doc)).count
            wanted += exact.count
            read += work.postingsRead
            total += index.postings(of: quantized).reduce(0) { $0 + $1.list.count }
        }
        let recall = Double(found) / Double(max(1, wanted))
        #expect(recall > 0.5 && recall <= 1)
        #expect(read < total)
    }

    @Test("calibration maps each reached target to the cheapest setting that reached it, and a target above all to exact")
    func calibration() {
        let index = InvertedIndex(vectors: Self.shape.corpus())
        var calibrator = Calibrator(postingsPerDocument: Double(index.postingCount) / Double(index.documentCount))
        for query in Self.shape.queries(40) { calibrator.measure(QuantizedQuery(query, documents: index.quantizer), in: index) }
        let calibration = calibrator.finish()
        #expect(calibration.queries > 0 && !calibration.points.isEmpty)
        for (a, b) in zip(calibration.points, calibration.points.dropFirst()) {
            #expect(a.recall < b.recall && a.cost <= b.cost)
        }
        for point in calibration.points {
            #expect(point.measuredRecall >= point.recall)
            #expect(calibration.settings(forRecall: point.recall) == point.settings)
        }
        if let last = calibration.points.last, last.recall < 1 {
            #expect(calibration.settings(forRecall: min(1, last.recall + 0.005)) == nil || calibration.points.last!.recall >= last.recall + 0.005)
        }
        #expect(SearchMode.exact.resolve(calibration) == nil)
        #expect(SearchMode.recall(0.5).problem == nil && SearchMode.recall(1.5).problem != nil)
        #expect(SearchMode.settings(.init(threshold: 1, heapFactor: 0.5)).problem != nil)
    }
}
