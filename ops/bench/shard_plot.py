#!/usr/bin/env python3
"""Latency against recall for one ops/bench-shard collection: Sparrow approximate (every setting
and the calibrated targets), Sparrow exact, and Seismic, from PREFIX.sparrow.json and
PREFIX.anchors.json; writes PREFIX.png and prints, per recall level, the fastest setting of each
system that reaches it and the goals' ratios (issue: approximate ≤ 0.3 × Seismic and ≤ 0.5 × exact
at 0.90 and 0.95, ≤ Seismic at 0.99).
"""
import argparse, json, os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

LEVELS = (0.90, 0.95, 0.99)

def fastest(rows, level):
    reaching = [r for r in rows if r["recall"] >= level]
    return min(reaching, key=lambda r: r["p50_ms"]) if reaching else None

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("prefix")
    a = ap.parse_args()
    sparrow = json.load(open(a.prefix + ".sparrow.json"))
    anchors = json.load(open(a.prefix + ".anchors.json"))
    exact = next(s for s in sparrow["systems"] if s["system"] == "sparrow-exact")
    approx = [s for s in sparrow["systems"] if s["system"].startswith("sparrow-approx")]
    seismic = [s for s in anchors["systems"] if s["system"] == "seismic"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for rows, label, style in ((approx, "Sparrow approximate", "o"), (seismic, "Seismic", "s")):
        frontier = sorted(rows, key=lambda r: r["recall"])
        ax.scatter([r["recall"] for r in frontier], [r["p50_ms"] for r in frontier], marker=style, label=label, alpha=0.7)
    ax.axhline(exact["p50_ms"], color="grey", linestyle="--", label=f"Sparrow exact (recall {exact['recall']})")
    ax.set_xlabel(f"recall@{sparrow['k']} against float exact")
    ax.set_ylabel("p50 latency per query, ms (single thread)")
    ax.set_yscale("log")
    ax.set_title(f"{os.path.basename(a.prefix)}: {sparrow['docs']} documents, {sparrow['postings']} postings")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.prefix + ".png", dpi=120)
    table = []
    for level in LEVELS:
        mine, theirs = fastest(approx, level), fastest(seismic, level)
        table.append({
            "recall": level,
            "sparrow_approx": mine and {k: mine.get(k) for k in ("threshold", "heap_factor", "recall_target", "recall", "p50_ms", "p99_ms")},
            "seismic": theirs and {k: theirs.get(k) for k in ("query_cut", "heap_factor", "recall", "p50_ms", "p99_ms")},
            "sparrow_exact_p50_ms": exact["p50_ms"],
            "approx_over_seismic": round(mine["p50_ms"] / theirs["p50_ms"], 3) if mine and theirs else None,
            "approx_over_exact": round(mine["p50_ms"] / exact["p50_ms"], 3) if mine else None,
        })
    print(json.dumps({"collection": os.path.basename(a.prefix), "png": a.prefix + ".png", "levels": table,
                      "index_bytes_per_posting": round(exact["index_bytes"] / sparrow["postings"], 2),
                      "sparrow_build_s": exact["build_s"], "seismic_build_s": seismic[0]["build_s"] if seismic else None,
                      "calibration": sparrow.get("calibration")}, indent=1))

if __name__ == "__main__":
    main()
