#!/usr/bin/env python3
"""../shared/bench/anchors.py's exact (scipy) and Seismic rows, with documents streamed from the
file instead of held as Python dictionaries, so that a million-document corpus fits in memory
(anchors.py was OOM-killed at 24 GB on the 1M synthetic corpus). Same Seismic build parameters,
same query settings, same timing and recall definitions (imported from anchors.py); BMP is left
out. Prints the same JSON shape.

    anchors_stream.py --anchors ../shared/bench/anchors.py --docs D --queries Q [--k 10]
"""
import argparse, array, gzip, importlib.util, json, os, time
import numpy as np, scipy.sparse as sp


def documents(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rt") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--anchors", required=True, help="path of ../shared/bench/anchors.py (its settings and helpers)")
    ap.add_argument("--docs", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location("anchors", a.anchors)
    anchors = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(anchors)
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)   # the anchors' native code logs to stdout
    import seismic
    dataset = seismic.SeismicDataset()
    vocab, ids = {}, []
    indptr, cols, vals = array.array("q", [0]), array.array("i"), array.array("f")
    for d in documents(a.docs):
        tokens, weights = list(d["vector"].keys()), list(d["vector"].values())
        dataset.add_document(d["id"], np.array(tokens, dtype=seismic.get_seismic_string()), np.array(weights, dtype=np.float32))
        ids.append(d["id"])
        cols.extend(vocab.setdefault(t, len(vocab)) for t in tokens)
        vals.extend(weights)
        indptr.append(len(cols))
    queries = list(documents(a.queries))
    # Query tokens no document has share one empty column.
    terms = len(vocab)
    X = sp.csr_matrix((np.frombuffer(vals, dtype=np.float32), np.frombuffer(cols, dtype=np.int32), np.frombuffer(indptr, dtype=np.int64)),
                      shape=(len(ids), terms + 1))
    _, (qr, qc, qv) = anchors.to_csr(queries, vocab)
    Q = sp.csr_matrix((qv, (qr, [min(c, terms) for c in qc])), shape=(len(queries), terms + 1), dtype=np.float32)
    report = {"docs": len(ids), "queries": len(queries), "postings": int(X.nnz), "k": a.k,
              "query_terms_mean": round(Q.nnz / max(1, len(queries)), 2), "systems": []}
    exact, times = anchors.exact_topk(X, Q, ids, a.k)
    report["systems"].append({"system": "exact-scipy", "recall": 1.0, **anchors.latency_stats(times)})
    del X
    t = time.perf_counter()
    n_postings = max(100, int(len(ids) * 0.0005 * 10))
    index = seismic.SeismicIndex.build_from_dataset(dataset, n_postings=n_postings, centroid_fraction=0.1, summary_energy=0.4, num_threads=1)
    build_s = time.perf_counter() - t
    for qc, hf in [(3, 0.9), (5, 0.9), (5, 0.8), (6, 0.7), (8, 0.7), (10, 0.6), (12, 0.6), (16, 0.5), (24, 0.4)]:
        found, times = [], []
        for q in queries:
            comps = np.array(list(q["vector"].keys()), dtype=seismic.get_seismic_string())
            weights = np.array(list(q["vector"].values()), dtype=np.float32)
            t = time.perf_counter()
            r = index.search(q["id"], comps, weights, a.k, query_cut=qc, heap_factor=hf)
            times.append(time.perf_counter() - t)
            found.append([x[2] for x in r])
        report["systems"].append({"system": "seismic", "query_cut": qc, "heap_factor": hf, "n_postings": n_postings, "build_s": round(build_s, 2),
                                  "recall": anchors.recall(found, exact, a.k), **anchors.latency_stats(times)})
    out.write(json.dumps(report, indent=1) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
