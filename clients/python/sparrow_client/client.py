"""The client: one connection to a coordinator's protobuf port, calls one at a time (a batch of
searches is pipelined on it), reconnecting when the connection breaks."""

import itertools
import math
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Iterable, List, Mapping, Optional, Sequence, Union

from . import _frame
from ._pb import common_pb2, coordinator_pb2, envelope_pb2
from .errors import SparrowConnectionError, SparrowError, SparrowTimeout
from .types import ClusterInfo, Document, SearchResult, WriteResult

Query = Union[str, Mapping[str, float]]

# Seconds a call may wait beyond its own deadline for the server's answer to it.
_GRACE = 0.5
# Calls of one batch on the wire at once, at most; halved when the coordinator refuses one
# for overload (RESOURCE_EXHAUSTED), which is then sent again.
_WINDOW = 16


@dataclass(frozen=True)
class TLS:
    """TLS to a coordinator: the cluster CA its certificate chains to, and, for operators, a
    client certificate and key (`sparrow certs issue --role admin`). The server must present
    the identity `sparrow://coordinator/…` (host names are not checked: identities are), or
    exactly `sparrow://coordinator/<coordinator_id>` when that is given."""

    ca: str
    cert: Optional[str] = None
    key: Optional[str] = None
    coordinator_id: Optional[str] = None

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert:
            context.load_cert_chain(self.cert, self.key)
        return context

    def check(self, peer: dict) -> None:
        uris = [value for kind, value in peer.get("subjectAltName", ()) if kind == "URI"]
        wanted = f"sparrow://coordinator/{self.coordinator_id}" if self.coordinator_id else None
        if not any(uri == wanted if wanted else uri.startswith("sparrow://coordinator/") for uri in uris):
            raise SparrowConnectionError(f"the server is not {wanted or 'a Sparrow coordinator'}: its certificate names {uris or 'no identity'}")


class Client:
    """A client of one coordinator. Thread-safe (calls are serialized on one connection);
    use one client per thread for concurrent calls. `timeout` (seconds) is every call's
    default deadline, sent to the coordinator with the call."""

    def __init__(self, host: str, port: int, api_key: Optional[str] = None, tls: Optional[TLS] = None, timeout: float = 5.0):
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.host, self.port, self.api_key, self.tls, self.timeout = host, port, api_key, tls, timeout
        self._socket: Optional[socket.socket] = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    # Calls.

    def search(
        self, query: Query, k: int = 10, filters: Optional[Mapping[str, str]] = None, explain: bool = False,
        recall: Optional[float] = None, threshold: Optional[float] = None, heap_factor: Optional[float] = None,
        timeout: Optional[float] = None,
    ) -> SearchResult:
        """The top `k` documents for `query`: a text (encoded by the coordinator) or a vector
        (token → weight). `filters`: stored field → the value a hit must have. Approximate
        search: a target `recall`, or both `threshold` and `heap_factor`; exact otherwise."""
        return self.search_batch([query], k, filters, explain, recall, threshold, heap_factor, timeout)[0]

    def search_batch(
        self, queries: Sequence[Query], k: int = 10, filters: Optional[Mapping[str, str]] = None, explain: bool = False,
        recall: Optional[float] = None, threshold: Optional[float] = None, heap_factor: Optional[float] = None,
        timeout: Optional[float] = None,
    ) -> List[SearchResult]:
        """`search` for each query, in order; the calls are pipelined on the connection. The
        first failed query raises its error."""
        requests = [self._query(q, k, filters, explain, recall, threshold, heap_factor, timeout) for q in queries]
        answers = self._calls("sparrow.v1.Coordinator/Search", requests, coordinator_pb2.QueryResponse, timeout)
        return [SearchResult._from_pb(answer, explain) for answer in answers]

    def write(
        self, upserts: Iterable[Union[Document, Mapping]] = (), deletes: Iterable[str] = (), timeout: Optional[float] = None,
    ) -> WriteResult:
        """Upserts documents (`Document`s, or mappings with "id", "vector" and optional
        "fields") and deletes ids; durable on every in-sync replica when it returns."""
        request = coordinator_pb2.WriteRequest()
        for upsert in upserts:
            document = upsert if isinstance(upsert, Document) else Document(upsert["id"], upsert["vector"], upsert.get("fields", {}))
            request.upserts.append(document._to_pb())
        request.deletes.extend(deletes)
        answer = self._calls("sparrow.v1.Coordinator/Write", [request], coordinator_pb2.WriteResponse, timeout)[0]
        return WriteResult(upserted=answer.upserted, deleted=answer.deleted, epoch=answer.epoch)

    def cluster(self, timeout: Optional[float] = None) -> ClusterInfo:
        """The cluster as the coordinator sees it: nodes, shards and replicas, moves, epoch."""
        answer = self._calls("sparrow.v1.Coordinator/Cluster", [coordinator_pb2.ClusterRequest()], coordinator_pb2.ClusterResponse, timeout)[0]
        return ClusterInfo._from_pb(answer)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_) -> None:
        self.close()

    # The protocol.

    @staticmethod
    def _query(query, k, filters, explain, recall, threshold, heap_factor, timeout) -> coordinator_pb2.QueryRequest:
        request = coordinator_pb2.QueryRequest(k=k, explain=explain)
        if isinstance(query, str):
            request.text = query
        else:
            for token, weight in query.items():
                request.vector.add(token=token, weight=weight)
        for name, value in sorted((filters or {}).items()):
            request.filter.add(name=name, value=value)
        if timeout is not None:
            request.timeout_ms = max(1, math.ceil(timeout * 1000))
        if recall is not None:
            if threshold is not None or heap_factor is not None:
                raise ValueError("approximate search takes either recall or both threshold and heap_factor, not both kinds")
            request.mode.approximate = True
            request.mode.target_recall = recall
        elif threshold is not None or heap_factor is not None:
            if threshold is None or heap_factor is None:
                raise ValueError("approximate search by settings needs both threshold and heap_factor")
            request.mode.approximate = True
            request.mode.threshold = threshold
            request.mode.heap_factor = heap_factor
        return request

    def _calls(self, method: str, requests: list, response_type, timeout: Optional[float]) -> list:
        """Sends `requests` to `method` and returns the answers in order; raises the first
        failure. A single call is sent once. A batch keeps at most `window` calls unanswered;
        a call of it refused for overload is sent again with the window halved (until the
        deadline), since it is the batch itself that overloads the coordinator."""
        budget = self.timeout if timeout is None else timeout
        if budget <= 0:
            raise ValueError(f"timeout must be positive, not {budget}")
        deadline = time.monotonic() + budget
        with self._lock:
            connection = self._connect(deadline)
            pending = {}
            answers = [None] * len(requests)
            unsent = list(range(len(requests)))
            window = min(_WINDOW, len(requests))
            try:
                while unsent or pending:
                    while unsent and len(pending) < window:
                        index = unsent.pop(0)
                        request_id = next(self._ids)
                        envelope = envelope_pb2.Envelope(
                            request_id=request_id, kind=envelope_pb2.Envelope.REQUEST, method=method,
                            timeout_micros=max(1, int((deadline - time.monotonic()) * 1e6)),
                            payload=requests[index].SerializeToString(), api_key=self.api_key or "",
                        )
                        connection.sendall(_frame.encode(envelope.SerializeToString()))
                        pending[request_id] = index
                    envelope = self._read(connection, deadline + _GRACE)
                    index = pending.pop(envelope.request_id, None)
                    if index is None:
                        continue  # an answer to a call given up on earlier
                    code = envelope.status.code
                    if code == common_pb2.Status.RESOURCE_EXHAUSTED and len(requests) > 1 and time.monotonic() < deadline:
                        window = max(1, window // 2)
                        unsent.insert(0, index)
                        if not pending:
                            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                        continue
                    if code != common_pb2.Status.OK:
                        raise SparrowError(common_pb2.Status.Code.Name(code), envelope.status.message)
                    answers[index] = response_type.FromString(envelope.payload)
            except SparrowError as error:
                # Answers still due would arrive on this connection later: start afresh.
                if pending or isinstance(error, (SparrowTimeout, SparrowConnectionError)):
                    self._drop()
                raise
            except (OSError, _frame.FrameError) as error:
                self._drop()
                raise SparrowConnectionError(f"{self.host}:{self.port}: {error}") from error
            return answers

    def _read(self, connection: socket.socket, deadline: float) -> envelope_pb2.Envelope:
        length = _frame.decode_header(self._exactly(connection, _frame.HEADER.size, deadline))
        return envelope_pb2.Envelope.FromString(self._exactly(connection, length, deadline))

    def _exactly(self, connection: socket.socket, count: int, deadline: float) -> bytes:
        chunks, missing = [], count
        while missing:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SparrowTimeout(f"no answer from {self.host}:{self.port} within the call's timeout")
            connection.settimeout(left)
            try:
                chunk = connection.recv(min(missing, 1 << 20))
            except socket.timeout:
                raise SparrowTimeout(f"no answer from {self.host}:{self.port} within the call's timeout") from None
            if not chunk:
                raise SparrowConnectionError(f"{self.host}:{self.port} closed the connection")
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def _connect(self, deadline: float) -> socket.socket:
        if self._socket is not None:
            return self._socket
        try:
            raw = socket.create_connection((self.host, self.port), timeout=max(0.001, deadline - time.monotonic()))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is None:
                self._socket = raw
            else:
                connection = self.tls.context().wrap_socket(raw, server_hostname=self.host)
                try:
                    self.tls.check(connection.getpeercert())
                except SparrowError:
                    connection.close()
                    raise
                self._socket = connection
        except socket.timeout:
            raise SparrowTimeout(f"could not connect to {self.host}:{self.port} within the call's timeout") from None
        except (OSError, ssl.SSLError) as error:
            raise SparrowConnectionError(f"cannot connect to {self.host}:{self.port}: {error}") from error
        return self._socket

    def _drop(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None
