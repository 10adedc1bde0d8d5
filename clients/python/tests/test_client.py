"""The Python client against a live cluster: the same answers as the HTTP API, typed results,
errors that carry the server's code, timeouts, TLS identities and API key scopes."""

import socket
import struct
import threading
import time

import pytest

from sparrow_client import TLS, Client, Document, SparrowConnectionError, SparrowError, SparrowTimeout


def f32(value: float) -> float:
    """`value` as the float32 both APIs send (JSON prints its shortest form)."""
    return struct.unpack("f", struct.pack("f", value))[0]


def client(cluster, key="read", **options) -> Client:
    return Client(cluster.host, cluster.port, api_key=cluster.keys[key], tls=TLS(ca=cluster.ca), **options)


def same_as_http(result, reply):
    assert [(h.rank, h.id, h.shard, f32(h.score)) for h in result.hits] == [
        (h["rank"], h["id"], h["shard"], f32(h["score"])) for h in reply["hits"]
    ]
    assert {t: f32(w) for t, w in result.query.items()} == {t: f32(w) for t, w in reply["query"].items()}
    assert (result.coverage.shards_total, result.coverage.shards_ok, result.coverage.timed_out) == (
        reply["coverage"]["shards_total"], reply["coverage"]["shards_ok"], reply["coverage"]["timed_out"])
    assert result.mode == reply["mode"]


def test_text_and_vector_searches_match_the_http_api(cluster):
    with client(cluster) as c:
        for query, body in [
            ("Protein and gene expression", {"query": "Protein and gene expression"}),
            ({"protein": 1.5, "cancer": 0.5}, {"vector": {"protein": 1.5, "cancer": 0.5}}),
        ]:
            for k in (1, 5, 50):
                result = c.search(query, k=k)
                same_as_http(result, cluster.http_search(dict(body, k=k)))
                assert len(result.hits) == k and result.coverage.complete and result.mode == "exact"
        text = c.search("Protein and gene expression", k=5)
        assert set(text.query) == {"protein", "and", "gene", "expression"}
        assert [h.rank for h in text.hits] == [1, 2, 3, 4, 5]
        assert all(a.score >= b.score for a, b in zip(text.hits, text.hits[1:]))


def test_filters_explain_and_approximate_match_the_http_api(cluster):
    with client(cluster) as c:
        filtered = c.search({"gene": 1.0}, k=10, filters={"lang": "de"})
        same_as_http(filtered, cluster.http_search({"vector": {"gene": 1.0}, "k": 10, "filter": {"lang": "de"}}))
        assert filtered.hits and all(int(h.id.split("-")[1]) % 3 == 0 for h in filtered.hits)

        explained = c.search({"protein": 1.5, "gene": 0.5}, k=3, explain=True)
        reply = cluster.http_search({"vector": {"protein": 1.5, "gene": 0.5}, "k": 3, "explain": True})
        same_as_http(explained, reply)
        for hit, http_hit in zip(explained.hits, reply["hits"]):
            assert {(t.token, f32(t.query_weight), f32(t.document_weight)) for t in hit.explanation} == {
                (t["token"], f32(t["query_weight"]), f32(t["document_weight"])) for t in http_hit["explanation"]}
            assert abs(sum(t.product for t in hit.explanation) - hit.score) < 0.01 * max(1.0, hit.score)
        assert c.search({"protein": 1.5}, k=3).hits[0].explanation is None

        # Threshold 0 reads every posting: the exact hits, labelled approximate.
        approximate = c.search({"protein": 1.5, "gene": 0.5}, k=5, threshold=0.0, heap_factor=1.0)
        same_as_http(approximate, cluster.http_search(
            {"vector": {"protein": 1.5, "gene": 0.5}, "k": 5, "mode": "approximate", "threshold": 0.0, "heap_factor": 1.0}))
        assert approximate.mode == "approximate" and approximate.approximate_shards == 3
        assert [h.id for h in approximate.hits] == [h.id for h in c.search({"protein": 1.5, "gene": 0.5}, k=5).hits]


def test_a_batch_answers_each_query_in_order(cluster):
    # More than the coordinator admits at once at first (16): refused ones are sent again.
    queries = [{w: 1.0} for w in ["protein", "gene", "cell", "virus", "brain"]] * 40 + ["blood drug"]
    with client(cluster) as c:
        batch = c.search_batch(queries, k=4)
        assert len(batch) == len(queries)
        for query, result in zip(queries[:5] + queries[-1:], batch[:5] + batch[-1:]):
            assert [h.id for h in result.hits] == [h.id for h in c.search(query, k=4).hits]


def test_writes_are_searchable_and_deletes_remove_them(cluster):
    with client(cluster, key="write") as c:
        written = c.write(upserts=[Document("py-1", {"pyclient": 2.0, "heart": 1.0}), {"id": "py-2", "vector": {"pyclient": 1.0}, "fields": {"lang": "en"}}])
        assert (written.upserted, written.deleted) == (2, 0) and written.epoch > 0
        assert [h.id for h in c.search({"pyclient": 1.0}, k=5).hits] == ["py-1", "py-2"]
        assert [h.id for h in c.search({"pyclient": 1.0}, k=5, filters={"lang": "en"}).hits] == ["py-2"]
        assert c.write(deletes=["py-1", "py-2"]).deleted == 2
        assert c.search({"pyclient": 1.0}, k=5).hits == []


def test_the_cluster_view(cluster):
    with client(cluster) as c:
        info = c.cluster()
    assert info.epoch > 0 and len(info.shards) == 3 and info.owner is None and info.moves == []
    assert all(node.state == "up" and node.reason is None for node in info.nodes)
    assert {r.node for s in info.shards for r in s.replicas} == {n.id for n in info.nodes}


def test_errors_carry_the_servers_code(cluster):
    with client(cluster) as c:
        with pytest.raises(SparrowError) as bad_k:
            c.search({"protein": 1.0}, k=100_000)
        assert bad_k.value.code == "INVALID_ARGUMENT" and "k must be between" in bad_k.value.message
        with pytest.raises(SparrowError) as negative:
            c.search({"protein": -1.0})
        assert negative.value.code == "INVALID_ARGUMENT" and "'protein'" in negative.value.message
        with pytest.raises(SparrowError) as read_only:
            c.write(deletes=["doc-1"])
        assert read_only.value.code == "PERMISSION_DENIED"
        # The connection still serves after refusals.
        assert c.search({"protein": 1.0}, k=1).hits
        with pytest.raises(SparrowError) as bad_recall:
            c.search({"protein": 1.0}, recall=1.5)
        assert bad_recall.value.code == "INVALID_ARGUMENT" and "recall" in bad_recall.value.message
        with pytest.raises(ValueError):
            c.search({"protein": 1.0}, threshold=0.2)
    with Client(cluster.host, cluster.port, api_key="spk_000000000000.nope", tls=TLS(ca=cluster.ca)) as stranger:
        with pytest.raises(SparrowError) as unknown:
            stranger.search({"protein": 1.0})
        assert unknown.value.code == "UNAUTHENTICATED"


def test_tls_checks_the_coordinators_identity(cluster):
    with Client(cluster.host, cluster.port, api_key=cluster.keys["read"], tls=TLS(ca=cluster.ca, coordinator_id="elsewhere")) as c:
        with pytest.raises(SparrowConnectionError) as wrong:
            c.search({"protein": 1.0})
        assert "sparrow://coordinator/elsewhere" in wrong.value.message
    with Client(cluster.host, cluster.port, api_key=cluster.keys["read"]) as plaintext:
        with pytest.raises(SparrowConnectionError):
            plaintext.search({"protein": 1.0})
    # An operator's certificate instead of a key.
    with Client(cluster.host, cluster.port, tls=TLS(ca=cluster.ca, cert=cluster.admin_cert, key=cluster.admin_key)) as admin:
        assert admin.cluster().epoch > 0


def test_a_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        with Client("127.0.0.1", listener.getsockname()[1], timeout=0.3) as c:
            started = time.monotonic()
            with pytest.raises(SparrowTimeout) as timeout:
                c.search({"protein": 1.0})
            assert timeout.value.code == "DEADLINE_EXCEEDED"
            assert time.monotonic() - started < 0.3 + 0.5 + 0.5
    finally:
        listener.close()
        for connection, _ in accepted:
            connection.close()
