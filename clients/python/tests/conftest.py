"""A live `sparrow local up --secure` cluster for the tests: 3 shards, TLS and API keys on, a
query encoder from ../shared's model (text queries), 240 documents over 12 words."""

import json
import os
import pathlib
import random
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parents[3]
WORDS = ["protein", "gene", "cell", "cancer", "virus", "blood", "brain", "heart", "drug", "patient", "tumor", "immune"]


@dataclass
class LiveCluster:
    host: str
    port: int
    http: str
    ca: str
    keys: dict
    admin_cert: str
    admin_key: str

    def http_search(self, body: dict, key: str = "read") -> dict:
        """POST /v1/search with the scope's key: the HTTP API's answer, to compare with."""
        request = urllib.request.Request(
            self.http + "/v1/search", data=json.dumps(body).encode(), method="POST",
            headers={"content-type": "application/json", "authorization": "Bearer " + self.keys[key]},
        )
        context = ssl.create_default_context(cafile=self.ca)
        context.check_hostname = False
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return json.load(response)


def documents():
    rng = random.Random(5)
    for doc in range(240):
        words = rng.sample(WORDS, 4)
        yield {"id": f"doc-{doc}", "vector": {w: rng.randint(1, 20) / 8 for w in words}, "fields": {"lang": "en" if doc % 3 else "de"}}


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    binary = os.environ.get("SPARROW_BIN", str(REPOSITORY / ".build" / "release" / "sparrow"))
    shared = pathlib.Path(os.environ.get("SPARROW_SHARED", str(REPOSITORY.parent / "shared")))
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing: build it (swift build -c release --product sparrow) or set SPARROW_BIN")
    work = tmp_path_factory.mktemp("sparrow")
    vectors = work / "vectors.jsonl"
    vectors.write_text("".join(json.dumps(d) + "\n" for d in documents()))
    data = work / "cluster"
    up = subprocess.run(
        [binary, "local", "up", "--shards", "3", "--data", str(data), "--vectors", str(vectors), "--secure",
         "--model", str(shared / "models" / "splade-tiny"), "--idf", str(shared / "models" / "msmarco-idf" / "idf.json")],
        capture_output=True, text=True, timeout=120,
    )
    if up.returncode != 0:
        pytest.fail(f"local up failed ({up.returncode}): {up.stdout}{up.stderr}")
    try:
        local = json.loads((data / "local.json").read_text())
        host, port = local["coordinatorRPC"].rsplit(":", 1)
        security = local["security"]
        yield LiveCluster(
            host=host, port=int(port), http=local["coordinatorHTTP"], ca=security["ca"], keys=security["keys"],
            admin_cert=security["adminCertificate"], admin_key=security["adminKey"],
        )
    finally:
        subprocess.run([binary, "local", "down", "--data", str(data)], capture_output=True, timeout=60)
