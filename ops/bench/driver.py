#!/usr/bin/env python3
"""Run the PyTorch reference encoder and Sparrow's CLI on the same documents,
one after the other, with the same threads and batch size; measure each
child's peak RSS (wait4), compare their vectors, print one JSON summary line.
Called by ops/bench-encoder, which sets up the Python environment and binary.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the repo
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_vectors import compare  # noqa: E402


def json_or_none(line):
    try:
        return json.loads(line)
    except ValueError:
        return None


def run(name, cmd, env):
    """Run cmd; return its summary JSON row plus wall time and peak RSS."""
    print(f"bench: {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        lines = out.read().splitlines()
    if proc.returncode != 0:
        sys.exit(f"bench: {name} failed with exit code {proc.returncode}")
    rows = [r for r in map(json_or_none, lines) if isinstance(r, dict) and "docs_per_s" in r]
    if not rows:
        sys.exit(f"bench: {name} printed no JSON stats line; its stdout ended with: {lines[-5:]}")
    row = rows[-1]
    row["wall_s"] = round(wall, 3)                       # includes start-up and model load
    row["max_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # ru_maxrss is in KiB on Linux
    row["cpu_user_s"] = round(usage.ru_utime, 2)  # with wall_s: a check on other load on the machine
    row["cpu_sys_s"] = round(usage.ru_stime, 2)
    return row


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--python", required=True, help="interpreter with torch + transformers")
    ap.add_argument("--sparrow", required=True, help="sparrow release binary")
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--limit", type=int, default=0, help="0: all documents")
    ap.add_argument("--workdir", required=True, help="where the vector files go")
    args = ap.parse_args()
    load_at_start = os.getloadavg()[0]

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               RAYON_NUM_THREADS=str(args.threads))
    common = ["--model", args.model, "--input", args.corpus,
              "--threads", str(args.threads), "--batch-size", str(args.batch_size)]
    if args.limit:
        common += ["--limit", str(args.limit)]
    hf_out = os.path.join(args.workdir, "pytorch.jsonl")
    sp_out = os.path.join(args.workdir, "sparrow.jsonl")

    hf_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "encode_hf.py")
    torch_row = run("pytorch", [args.python, hf_script, *common, "--output", hf_out], env)
    sparrow_row = run("sparrow", [args.sparrow, "encode", *common, "--output", sp_out, "--stats-json"], env)
    if torch_row["docs"] != sparrow_row["docs"]:
        print(f"bench: WARNING: document counts differ: pytorch {torch_row['docs']}, "
              f"sparrow {sparrow_row['docs']}", file=sys.stderr)
    agreement = compare(hf_out, sp_out)
    if agreement["docs_over_tolerance"] or agreement["docs_compared"] != torch_row["docs"]:
        print(f"bench: WARNING: vectors disagree: {json.dumps(agreement)}", file=sys.stderr)

    ratio = sparrow_row["docs_per_s"] / torch_row["docs_per_s"]
    for r in (torch_row, sparrow_row):
        print(f"bench: {r['system']:8} {r['docs_per_s']:9.2f} docs/s  peak RSS {r['max_rss_mib']:8.1f} MiB",
              file=sys.stderr)
    print(f"bench: ratio sparrow/pytorch docs/s = {ratio:.2f}; vectors in {args.workdir}", file=sys.stderr)
    print(json.dumps({
        "rows": [torch_row, sparrow_row],
        "ratio": round(ratio, 3),
        "agreement": agreement,
        "params": {"threads": args.threads, "batch_size": args.batch_size, "limit": args.limit or None,
                   "model": args.model, "corpus": args.corpus},
        "machine": {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu_model(), "kernel": platform.release(),
                    "loadavg_1m": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],  # start, end
                    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
    }))


if __name__ == "__main__":
    main()
