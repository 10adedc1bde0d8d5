"""Typed results, made from the protobuf answers."""

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

from ._pb import common_pb2, coordinator_pb2


@dataclass(frozen=True)
class Contribution:
    """One matched token of an explained hit: its query weight times its document weight."""

    token: str
    query_weight: float
    document_weight: float

    @property
    def product(self) -> float:
        return self.query_weight * self.document_weight


@dataclass(frozen=True)
class Hit:
    rank: int
    id: str
    shard: str
    score: float
    # Each matched token's contribution when the search asked to explain; else None.
    explanation: Optional[List[Contribution]] = None


@dataclass(frozen=True)
class ShardFailure:
    shard: str
    node: str
    reason: str


@dataclass(frozen=True)
class Coverage:
    shards_total: int
    shards_ok: int
    failed: List[ShardFailure]
    timed_out: bool

    @property
    def complete(self) -> bool:
        return self.shards_ok == self.shards_total


@dataclass(frozen=True)
class SearchResult:
    hits: List[Hit]
    coverage: Coverage
    # The query vector that was searched (a text query's tokens and weights).
    query: Dict[str, float]
    took_ms: float
    # "exact", "approximate" (every shard that answered) or "mixed".
    mode: str
    approximate_shards: int

    @classmethod
    def _from_pb(cls, response: coordinator_pb2.QueryResponse, explain: bool) -> "SearchResult":
        hits = [
            Hit(
                rank=rank, id=hit.id, shard=hit.shard, score=hit.score,
                explanation=[Contribution(c.token, c.query_weight, c.document_weight) for c in hit.explanation] if explain else None,
            )
            for rank, hit in enumerate(response.hits, start=1)
        ]
        coverage = Coverage(
            shards_total=response.coverage.shards_total, shards_ok=response.coverage.shards_ok,
            failed=[ShardFailure(f.shard, f.node, f.reason) for f in response.coverage.failed],
            timed_out=response.coverage.timed_out,
        )
        return cls(
            hits=hits, coverage=coverage, query={t.token: t.weight for t in response.query}, took_ms=response.took_ms,
            mode=response.mode or "exact", approximate_shards=response.approximate_shards,
        )


@dataclass(frozen=True)
class Document:
    """A document to write: its id, its vector (token → weight) and stored fields."""

    id: str
    vector: Mapping[str, float]
    fields: Mapping[str, str] = field(default_factory=dict)

    def _to_pb(self) -> common_pb2.Document:
        document = common_pb2.Document(id=self.id)
        for token, weight in self.vector.items():
            document.vector.add(token=token, weight=weight)
        for name, value in sorted(self.fields.items()):
            document.fields.add(name=name, value=value)
        return document


@dataclass(frozen=True)
class WriteResult:
    upserted: int
    deleted: int
    # The cluster map's epoch the writes were made at.
    epoch: int


@dataclass(frozen=True)
class Node:
    id: str
    address: str
    # "up", "draining" or "down".
    state: str
    reason: Optional[str]


@dataclass(frozen=True)
class Replica:
    node: str
    address: str
    # It missed acknowledged writes and serves nothing until it has caught up.
    stale: bool


@dataclass(frozen=True)
class Shard:
    id: str
    replicas: List[Replica]


@dataclass(frozen=True)
class Move:
    id: str
    shard: str
    # None: a replica being added.
    from_node: Optional[str]
    to_node: str
    phase: str
    # While the coordinator asked copies it: the checkpoint's bytes on the target so far, and in all.
    copied_bytes: Optional[int] = None
    total_bytes: Optional[int] = None


@dataclass(frozen=True)
class ClusterInfo:
    epoch: int
    build: Optional[str]
    # The coordinator that owns the map, when the one asked follows it.
    owner: Optional[str]
    nodes: List[Node]
    shards: List[Shard]
    moves: List[Move]

    @classmethod
    def _from_pb(cls, response: coordinator_pb2.ClusterResponse) -> "ClusterInfo":
        return cls(
            epoch=response.epoch, build=response.build_id or None, owner=response.owner or None,
            nodes=[Node(n.node, n.address, n.state, n.reason or None) for n in response.nodes],
            shards=[Shard(s.shard, [Replica(r.node, r.address, r.stale) for r in s.replicas]) for s in response.shards],
            moves=[
                Move(m.id, m.shard, getattr(m, "from") or None, m.to, m.phase, m.copied_bytes if m.total_bytes else None, m.total_bytes or None)
                for m in response.moves
            ],
        )
