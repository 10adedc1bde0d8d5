#!/usr/bin/env python3
"""Build times of the anchors (Seismic, BMP) on a vectors file, nothing else: no queries and no
exact reference, so that a million-document corpus fits in memory. Each build is timed as
../shared/bench/anchors.py times it: Seismic from its filled dataset (single-threaded, the same
parameters), BMP from its first add_document to finish() (bsize 32, weights scaled to 0..255).
Documents stream from the file into each anchor; no copy of the corpus is kept in Python.

    anchor_builds.py --docs DOCS.jsonl.gz [--skip seismic,bmp]   → JSON on stdout
"""
import argparse, gzip, json, os, resource, shutil, sys, tempfile, time


def documents(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rt") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def seismic_build(path):
    import numpy as np, seismic
    ds = seismic.SeismicDataset()
    count = 0
    for d in documents(path):
        ds.add_document(d["id"], np.array(list(d["vector"].keys()), dtype=seismic.get_seismic_string()),
                        np.array(list(d["vector"].values()), dtype=np.float32))
        count += 1
    t = time.perf_counter()
    seismic.SeismicIndex.build_from_dataset(ds, n_postings=max(100, int(count * 0.0005 * 10)), centroid_fraction=0.1,
                                            summary_energy=0.4, num_threads=1)
    return time.perf_counter() - t


def bmp_build(path):
    import bmp
    scale = 255.0 / max(max(d["vector"].values(), default=1.0) for d in documents(path))
    tmp = tempfile.mkdtemp()
    try:
        t = time.perf_counter()
        ix = bmp.Indexer(os.path.join(tmp, "index.bmp"), bsize=32, compress_range=False)
        for d in documents(path):
            ix.add_document(d["id"], {tok: int(round(w * scale)) for tok, w in d["vector"].items() if int(round(w * scale)) > 0})
        ix.finish()
        return time.perf_counter() - t
    finally:
        shutil.rmtree(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", required=True)
    ap.add_argument("--skip", default="")
    a = ap.parse_args()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)   # the anchors' native code logs to stdout
    report = {"docs": a.docs}
    if "seismic" not in a.skip:
        report["seismic_build_s"] = round(seismic_build(a.docs), 2)
    if "bmp" not in a.skip:
        report["bmp_build_s"] = round(bmp_build(a.docs), 2)
    report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
