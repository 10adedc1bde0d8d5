import Foundation
import SparrowEtcd
import Testing

@Suite struct ElectionTests {
    static func candidate(_ name: String, _ revision: Int64) -> Election.Candidate {
        .init(key: "/sparrow/c/coordinators/\(name)", createRevision: revision, value: Data(name.utf8))
    }

    @Test func theOldestKeyOwnsAndTheOthersFollowIt() {
        let now = ContinuousClock.now
        var election = Election()
        election.reset([Self.candidate("b", 12), Self.candidate("a", 10)], asOf: 13)
        #expect(election.role(at: now) == .unavailable(reason: "not registered in etcd (no live lease)"))
        election.registered(Self.candidate("c", 14), sentAt: now, ttl: .seconds(5))
        #expect(election.role(at: now) == .follower(owner: Self.candidate("a", 10)))
        election.gone(Self.candidate("a", 10).key)
        #expect(election.role(at: now) == .follower(owner: Self.candidate("b", 12)))
        election.gone(Self.candidate("b", 12).key)
        #expect(election.role(at: now) == .owner(Self.candidate("c", 14)))
        // A newer key does not depose it.
        election.saw(Self.candidate("d", 20))
        #expect(election.role(at: now) == .owner(Self.candidate("c", 14)))
    }

    @Test func anOwnerWhoseLeaseMayHaveLapsedStopsOwningBeforeEtcdCouldExpireIt() {
        let sent = ContinuousClock.now
        var election = Election()
        election.registered(Self.candidate("a", 10), sentAt: sent, ttl: .seconds(5))
        #expect(election.role(at: sent + .milliseconds(4400)) == .owner(Self.candidate("a", 10)))
        // etcd expires the lease 5 s after it received the renewal, which is after `sent`:
        // this process gives up earlier, with a margin.
        guard case .unavailable = election.role(at: sent + .milliseconds(4600)) else {
            Issue.record("still owner 4.6 s into a 5 s lease")
            return
        }
        // A later renewal brings it back.
        election.renewed(sentAt: sent + .seconds(4), ttl: .seconds(5))
        #expect(election.role(at: sent + .milliseconds(4600)) == .owner(Self.candidate("a", 10)))
    }

    @Test func anOwnerWhoseKeyIsGoneIsNotOwnerEvenWithALiveLeaseClock() {
        let now = ContinuousClock.now
        var election = Election()
        election.registered(Self.candidate("a", 10), sentAt: now, ttl: .seconds(5))
        election.reset([Self.candidate("b", 12)], asOf: 15)   // etcd no longer has a's key
        guard case .unavailable = election.role(at: now) else {
            Issue.record("owner without its key: \(election.role(at: now))")
            return
        }
        election.leaseLost()
        #expect(election.me == nil && election.candidates == [Self.candidate("b", 12)])
    }

    @Test func aRegistrationThatRacesTheFirstReadIsKept() {
        let now = ContinuousClock.now
        var election = Election()
        election.registered(Self.candidate("a", 10), sentAt: now, ttl: .seconds(5))
        // The read was made at revision 9, before the key existed; the key is still there.
        election.reset([], asOf: 9)
        #expect(election.role(at: now) == .owner(Self.candidate("a", 10)))
        election.reset([], asOf: 10)
        guard case .unavailable = election.role(at: now) else {
            Issue.record("a key absent from a read made after it was created still owns")
            return
        }
    }
}

@Suite struct EtcdWireTests {
    @Test func decodesTheGatewaysOmittedZerosAndStringIntegers() throws {
        // As etcd 3.4's gateway writes them: a PUT event has no "type", a failed txn no "succeeded".
        let watch = #"{"result":{"header":{"revision":"3","raft_term":"2"},"events":[{"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}},{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"4"}}]}}"#
        let message = try JSONDecoder.etcd.decode(EtcdWire.Streamed<EtcdWire.WatchResponse>.self, from: Data(watch.utf8))
        let events = try #require(message.result?.events)
        #expect(events.count == 2 && events[0].type == nil && events[1].type == "DELETE")
        #expect(events[0].kv?.value == Data("baz".utf8) && events[0].kv?.create_revision?.value == 2)
        let txn = try JSONDecoder.etcd.decode(EtcdWire.TxnResponse.self, from: Data(#"{"header":{"revision":"9"}}"#.utf8))
        #expect(txn.succeeded == nil && txn.header?.revision?.value == 9)
        #expect(throws: DecodingError.self) { try JSONDecoder.etcd.decode(EtcdWire.Int64String.self, from: Data(#""12x""#.utf8)) }
    }

    @Test func prefixEndCoversEveryKeyUnderThePrefix() {
        #expect(EtcdWire.prefixEnd(Data("/a/".utf8)) == Data("/a0".utf8))
        #expect(EtcdWire.prefixEnd(Data([0x61, 0xff])) == Data([0x62]))
        #expect(EtcdWire.prefixEnd(Data([0xff, 0xff])) == Data([0]))
    }
}

extension JSONDecoder {
    static var etcd: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dataDecodingStrategy = .base64
        return decoder
    }
}
