#!/usr/bin/env python3
"""QPS and p99 against concurrent clients, one line per system and shard count, from the JSON
that `sparrow bench cluster` prints (rows of system, shards, clients, p50_ms, p99_ms, qps);
writes the PNG next to it (REPORT.json → REPORT.png) and prints its path."""
import argparse, json, os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

STYLES = {"in-process": ":", "cluster": "-", "cluster+tls": "--"}

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("report")
    a = ap.parse_args()
    report = json.load(open(a.report))
    series = {}
    for row in report["rows"]:
        if row["system"] not in STYLES:
            continue  # the bare wire rows (ping-pong, Health) are not searches
        series.setdefault((row["system"], row["shards"]), []).append(row)
    fig, (qps_ax, p99_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    colors = {shards: f"C{i}" for i, shards in enumerate(sorted({s for _, s in series}))}
    for (system, shards), rows in sorted(series.items()):
        rows.sort(key=lambda r: r["clients"])
        clients = [r["clients"] for r in rows]
        label = f"{system}, {shards} shard{'s' if shards > 1 else ''}"
        qps_ax.plot(clients, [r["qps"] for r in rows], STYLES[system], color=colors[shards], marker="o", label=label)
        p99_ax.plot(clients, [float(r["p99_ms"]) for r in rows], STYLES[system], color=colors[shards], marker="o", label=label)
    for ax, title, unit in ((qps_ax, "throughput", "queries/s"), (p99_ax, "p99 latency", "ms")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.set_yscale("log")  # the in-process engine is orders of magnitude from the cluster
    qps_ax.legend(fontsize=8)
    fig.suptitle(f"sparrow bench cluster: {report['docs']} documents, {report['queries']} queries, k={report['k']}, {report['cores']} cores")
    fig.tight_layout()
    out = os.path.splitext(a.report)[0] + ".png"
    fig.savefig(out, dpi=120)
    print(out)

if __name__ == "__main__":
    main()
