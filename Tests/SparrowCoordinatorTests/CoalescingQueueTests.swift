import SparrowCoordinator
import Testing

@Suite struct CoalescingQueueTests {
    @Test func callsBeyondTheLimitWaitAndGoOutTogetherInTheFreedSlot() {
        var queue = CoalescingQueue<String, Int>(limit: 2, maxBatch: 10)
        let started = [queue.start("a"), queue.start("a"), queue.start("a"), queue.start("b")]
        #expect(started == [true, true, false, true], "two slots for a; b has its own")
        for id in 0..<3 { queue.wait("a", id: UInt64(id), id) }
        #expect(queue.load("a") == (2, 3))
        let batch = queue.finish("a")
        #expect(batch == [0, 1, 2], "the slot passes to every waiting call, oldest first")
        #expect(queue.load("a") == (2, 0))
        let rest = [queue.finish("a"), queue.finish("a")]
        #expect(rest == [[], []])
        #expect(queue.load("a") == (0, 0))
        let again = queue.start("a")
        #expect(again)
    }

    @Test func batchesAreCappedAndTheRestWaitForTheNextSlot() {
        var queue = CoalescingQueue<String, Int>(limit: 1, maxBatch: 2)
        _ = queue.start("a")
        for id in 0..<5 { queue.wait("a", id: UInt64(id), id) }
        let batches = (0..<4).map { _ in queue.finish("a") }
        #expect(batches == [[0, 1], [2, 3], [4], []])
        #expect(queue.load("a") == (0, 0))
    }

    @Test func aRemovedCallIsNotSentAndOneAlreadySentCannotBeRemoved() {
        var queue = CoalescingQueue<String, Int>(limit: 1, maxBatch: 10)
        _ = queue.start("a")
        queue.wait("a", id: 7, 70)
        queue.wait("a", id: 8, 80)
        let removed = [queue.remove("a", id: 7), queue.remove("a", id: 7)]
        #expect(removed == [70, nil])
        let batch = queue.finish("a")
        #expect(batch == [80])
        let late = queue.remove("a", id: 8)
        #expect(late == nil, "already sent")
    }
}
