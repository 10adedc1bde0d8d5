#!/usr/bin/env python3
"""Summarise ops/bench-shard reports: per collection, Sparrow's exact engine next to the anchors.

Arguments are report prefixes (PREFIX.sparrow.json and PREFIX.anchors.json). Prints one JSON
object with every row and a table comparing Sparrow's p50 with Seismic's fastest setting
that reaches recall >= 0.95 (the goal: ratio <= 1.0), and p99 / p50 (the goal: <= 3) beside
the spread of the queries' postings and the anchors' own p99 / p50.
"""
import argparse, datetime, json, os

def spread(system):
    return round(float(system["p99_ms"]) / max(1e-9, float(system["p50_ms"])), 2)

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--machine", default="")
    ap.add_argument("prefixes", nargs="+")
    a = ap.parse_args()
    rows, table = [], []
    for prefix in a.prefixes:
        name = os.path.basename(prefix)
        sparrow = json.load(open(prefix + ".sparrow.json"))
        anchors = json.load(open(prefix + ".anchors.json"))
        mine = sparrow["systems"][0]
        seismic = [s for s in anchors["systems"] if s["system"] == "seismic" and s["recall"] >= 0.95]
        best = min(seismic, key=lambda s: s["p50_ms"]) if seismic else None
        scipy = next(s for s in anchors["systems"] if s["system"] == "exact-scipy")
        bmp = [s for s in anchors["systems"] if s["system"] == "bmp"]
        rows.append({"collection": name, "docs": sparrow["docs"], "postings": sparrow["postings"],
                     "query_terms_mean": sparrow["query_terms_mean"],
                     "systems": sparrow["systems"] + anchors["systems"]})
        table.append({
            "collection": name,
            "sparrow_p50_ms": mine["p50_ms"], "sparrow_p99_ms": mine["p99_ms"],
            "sparrow_p99_over_p50": spread(mine),
            "query_postings_p99_over_p50": round(sparrow["query_postings_p99"] / max(1, sparrow["query_postings_p50"]), 2),
            "scipy_p99_over_p50": spread(scipy),
            "seismic_p99_over_p50": spread(best) if best else None,
            "sparrow_recall_vs_float_exact": mine["recall"],
            "seismic_p50_ms_at_recall_095": best["p50_ms"] if best else None,
            "seismic_setting": {"query_cut": best["query_cut"], "heap_factor": best["heap_factor"], "recall": best["recall"]} if best else None,
            "sparrow_over_seismic_p50": round(float(mine["p50_ms"]) / best["p50_ms"], 3) if best else None,
            "scipy_p50_ms": scipy["p50_ms"],
            "bmp_p50_ms": min(s["p50_ms"] for s in bmp) if bmp else None,
            "sparrow_index_bytes": mine["index_bytes"], "sparrow_resident_bytes": mine["resident_bytes"],
            "sparrow_build_s": mine["build_s"],
        })
    print(json.dumps({"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": a.machine,
                      "k": json.load(open(a.prefixes[0] + ".sparrow.json"))["k"], "summary": table, "reports": rows}, indent=1))

if __name__ == "__main__":
    main()
