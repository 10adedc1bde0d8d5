import Foundation

/// Who owns a resource among candidates that registered in etcd, as one process sees it: a
/// value, with no I/O (the control plane feeds it what etcd says and asks it for the role).
///
/// Each candidate holds a key bound to its lease; the owner is the candidate whose key was
/// created first (lowest create revision). Keys made later always get higher revisions, so a
/// candidate stays owner for as long as its key exists: the owner's changes are transactions
/// that require its key at its create revision, which fail once the key is gone.
///
/// A process cannot see its lease expire when it cannot reach etcd, so it counts for itself:
/// the lease runs at least `ttl` from when the last successful renewal was *sent* (etcd counts
/// from when it received it), less a safety margin; past that, the process stops acting as
/// owner, whatever etcd may still say. A new owner can only be elected once etcd has expired
/// the lease, which is later.
public struct Election: Sendable {
    public struct Candidate: Sendable, Equatable {
        public var key: String
        public var createRevision: Int64
        public var value: Data

        public init(key: String, createRevision: Int64, value: Data) {
            self.key = key
            self.createRevision = createRevision
            self.value = value
        }
    }

    public enum Role: Sendable, Equatable {
        /// This process owns it.
        case owner(Candidate)
        /// Another candidate does (nil: none has registered, as far as this process knows).
        case follower(owner: Candidate?)
        /// This process holds no live lease: it cannot tell whether it still owns anything.
        case unavailable(reason: String)
    }

    /// Every candidate, oldest key first.
    public private(set) var candidates: [Candidate] = []
    /// This process's own key and its create revision, once registered.
    public private(set) var me: Candidate?
    /// Until when this process's lease surely runs.
    public private(set) var leaseValidUntil: ContinuousClock.Instant?
    /// The share of the TTL counted as surely left after a renewal (clock rates differ a little).
    public static let safety = 0.9

    public init() {}

    /// This process registered `me`, under a lease granted (or renewed) at `sentAt` for `ttl`.
    public mutating func registered(_ me: Candidate, sentAt: ContinuousClock.Instant, ttl: Duration) {
        self.me = me
        saw(me)
        renewed(sentAt: sentAt, ttl: ttl)
    }

    /// A renewal sent at `sentAt` succeeded, with `ttl` left.
    public mutating func renewed(sentAt: ContinuousClock.Instant, ttl: Duration) {
        leaseValidUntil = sentAt + ttl * Self.safety
    }

    /// The lease expired or was revoked: this process must register again.
    public mutating func leaseLost() {
        if let me { gone(me.key) }
        me = nil
        leaseValidUntil = nil
    }

    /// What etcd held at `revision`: every candidate key. Candidates known here that were
    /// created after it (this process's own registration, racing the read) stay.
    public mutating func reset(_ all: [Candidate], asOf revision: Int64) {
        candidates = (all + candidates.filter { $0.createRevision > revision && !all.map(\.key).contains($0.key) })
            .sorted { $0.createRevision < $1.createRevision }
    }

    /// A candidate key was created or changed.
    public mutating func saw(_ candidate: Candidate) {
        candidates.removeAll { $0.key == candidate.key }
        candidates.append(candidate)
        candidates.sort { $0.createRevision < $1.createRevision }
    }

    /// A candidate key went (its lease expired, or it was revoked).
    public mutating func gone(_ key: String) {
        candidates.removeAll { $0.key == key }
    }

    /// The role of this process at `now`.
    public func role(at now: ContinuousClock.Instant) -> Role {
        guard let me else { return .unavailable(reason: "not registered in etcd (no live lease)") }
        guard let leaseValidUntil, now < leaseValidUntil else {
            return .unavailable(reason: "the lease was not renewed in time (etcd unreachable or without quorum)")
        }
        guard let first = candidates.first, candidates.contains(where: { $0.key == me.key }) else {
            return .unavailable(reason: "its key is gone from etcd (the lease expired)")
        }
        return first.key == me.key ? .owner(me) : .follower(owner: first)
    }
}
