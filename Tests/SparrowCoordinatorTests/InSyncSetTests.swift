import SparrowCore
import SparrowCoordinator
import SparrowWire
import Testing

@Suite struct InSyncSetTests {
    let t5a = ChangeTail(sequence: 5, write: 0xa)
    let t5b = ChangeTail(sequence: 5, write: 0xb)
    let t6 = ChangeTail(sequence: 6, write: 0xc)

    @Test func aWriteIsAcknowledgedWhileOneReplicaTookItAndTheOthersAreNamed() throws {
        let settled = try #require(InSyncSet.settle([("a", t6), ("b", nil), ("c", t6)]))
        #expect(settled.tail == t6 && settled.missed == ["b"])
        #expect(InSyncSet.settle([("a", nil), ("b", nil)]) == nil)
        // A replica that answers with another tail than the others missed the write too.
        let split = try #require(InSyncSet.settle([("a", t5a), ("b", t6), ("c", t6)]))
        #expect(split.tail == t6 && split.missed == ["a"])
    }

    @Test func reconcilingKeepsTheLongestLogThenTheMostHeldThenTheFirst() throws {
        let longest = try #require(InSyncSet.reconcile([("a", t5a), ("b", t6), ("c", nil)]))
        #expect(longest.tail == t6 && longest.behind == ["a"], "c did not answer: it is left as it is")
        let most = try #require(InSyncSet.reconcile([("a", t5a), ("b", t5b), ("c", t5b)]))
        #expect(most.tail == t5b && most.behind == ["a"])
        let first = try #require(InSyncSet.reconcile([("a", t5b), ("b", t5a)]))
        #expect(first.tail == t5b && first.behind == ["b"])
        #expect(InSyncSet.reconcile([("a", nil)]) == nil)
    }

    @Test func aCopyCatchesUpOnlyWhereItsLastChangeIsTheSources() {
        var held = Sparrow_V1_ShardStats()
        (held.lastChange, held.lastWrite, held.buildID) = (5, 0xa, "b1")
        var changes = Sparrow_V1_ReadChangesResponse()
        (changes.lastChange, changes.afterWrite, changes.buildID) = (9, 0xa, "b1")
        #expect(InSyncSet.mismatch(held, changes, source: "s", target: "t") == nil)
        var other = changes
        other.afterWrite = 0xb
        #expect(InSyncSet.mismatch(held, other, source: "s", target: "t")?.contains("came from write a") == true)
        other = changes
        other.trimmed = true
        #expect(InSyncSet.mismatch(held, other, source: "s", target: "t")?.contains("compacted") == true)
        other = changes
        other.lastChange = 4
        #expect(InSyncSet.mismatch(held, other, source: "s", target: "t")?.contains("beyond") == true)
        other = changes
        other.buildID = "b2"
        #expect(InSyncSet.mismatch(held, other, source: "s", target: "t")?.contains("build") == true)
    }
}
