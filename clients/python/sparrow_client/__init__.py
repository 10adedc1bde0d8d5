"""A client of a Sparrow coordinator over its protobuf/TCP protocol (see proto/ in the repository).

    from sparrow_client import Client, TLS

    with Client("127.0.0.1", 7000, api_key="spk_…", tls=TLS(ca="ca.pem")) as client:
        result = client.search("sparse retrieval", k=10)
        for hit in result.hits:
            print(hit.rank, hit.id, hit.score)
"""

from .client import TLS, Client
from .errors import SparrowConnectionError, SparrowError, SparrowTimeout
from .types import (
    ClusterInfo,
    Contribution,
    Coverage,
    Document,
    Hit,
    Move,
    Node,
    Replica,
    SearchResult,
    Shard,
    ShardFailure,
    WriteResult,
)

__all__ = [
    "Client", "TLS", "SparrowError", "SparrowTimeout", "SparrowConnectionError", "SearchResult", "Hit",
    "Contribution", "Coverage", "ShardFailure", "Document", "WriteResult", "ClusterInfo", "Node", "Shard",
    "Replica", "Move",
]
