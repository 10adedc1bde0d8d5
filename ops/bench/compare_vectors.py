#!/usr/bin/env python3
"""Compare two sparse-vector files ({"id", "vector": {token: weight}} per line).

For the documents present in both files, the difference of a document is the
max |a - b| over the union of its tokens (a missing token counts as 0).
Prints a JSON summary; usable as a module (compare(a, b, tol)) or a command.
"""
import argparse
import gzip
import json


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return {d["id"]: d["vector"] for d in map(json.loads, filter(str.strip, f))}


def compare(path_a, path_b, tol=1e-4):
    a, b = load(path_a), load(path_b)
    common = [doc_id for doc_id in a if doc_id in b]
    worst_id, worst, over = None, 0.0, 0
    for doc_id in common:
        va, vb = a[doc_id], b[doc_id]
        diff = max((abs(va.get(t, 0.0) - vb.get(t, 0.0)) for t in va.keys() | vb.keys()), default=0.0)
        over += diff > tol
        if diff > worst:
            worst_id, worst = doc_id, diff
    return {
        "docs_a": len(a), "docs_b": len(b), "docs_compared": len(common),
        "max_abs_diff": worst, "worst_doc": worst_id,
        "tolerance": tol, "docs_over_tolerance": over,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    print(json.dumps(compare(args.a, args.b, args.tol)))


if __name__ == "__main__":
    main()
