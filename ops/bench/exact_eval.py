#!/usr/bin/env python3
"""Exact (brute-force) retrieval quality for sparse vectors: NDCG@10, Recall@100, MRR@10 (standard library only).

  python3 exact_eval.py --docs D.jsonl.gz --queries Q.jsonl.gz --qrels qrels.tsv [--run out.trec]
Pure-Python twin of shared/bench/eval_reference.py (same interface, output and definitions, no numpy/scipy).
Vectors are {"id" (or "_id"), "vector": {token: weight}} lines; qrels are TSV query-id, corpus-id, score (header line).
Definitions follow trec_eval: graded gains, log2 discount, ideal ranking from all judged documents;
queries without any relevant judgment are skipped. Ties are broken by document order in the file.
Only documents with a positive score are ranked; the run file holds the top 1000 of them per query.
"""
import argparse, gzip, heapq, json, math

def read(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt") as f:
        recs = [json.loads(l) for l in f if l.strip()]
    return [(str(r["id"] if "id" in r else r["_id"]), r["vector"]) for r in recs]

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", required=True); ap.add_argument("--queries", required=True)
    ap.add_argument("--qrels", required=True); ap.add_argument("--run")
    a = ap.parse_args()
    docs, queries = read(a.docs), read(a.queries)
    index = {}
    for j, (_, vec) in enumerate(docs):
        for t, w in vec.items():
            index.setdefault(t, []).append((j, float(w)))
    pos = {t: i for i, t in enumerate(index)}  # token ids in first-seen order, like the reference's vocab
    qrels = {}
    with open(a.qrels) as f:
        next(f)
        for line in f:
            q, d, s = line.split("\t")[:3]
            qrels.setdefault(q, {})[d] = int(float(s))
    ids = [d for d, _ in docs]
    ndcg, rec100, mrr, n = 0.0, 0.0, 0.0, 0
    run = open(a.run, "w") if a.run else None
    for qid, qvec in queries:
        acc = {}
        # scipy's CSR product sums query tokens in vocab order and docs in file order: same floats, same ties
        for t, qw in sorted((tw for tw in qvec.items() if tw[0] in pos), key=lambda tw: pos[tw[0]]):
            qw = float(qw)
            for j, dw in index[t]:
                acc[j] = acc.get(j, 0.0) + qw * dw
        top = heapq.nlargest(1000, ((s, -j) for j, s in acc.items() if s > 0))
        ranked = [ids[-nj] for _, nj in top]
        if run:
            for r, (s, nj) in enumerate(top):
                run.write(f"{qid} Q0 {ids[-nj]} {r + 1} {s:.6f} exact\n")
        rel = qrels.get(qid, {})
        if not any(g > 0 for g in rel.values()):
            continue
        n += 1
        dcg = sum(rel.get(d, 0) / math.log2(r + 2) for r, d in enumerate(ranked[:10]) if rel.get(d, 0) > 0)
        ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:10]
        ndcg += dcg / sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
        relevant = {d for d, g in rel.items() if g > 0}
        rec100 += len(relevant & set(ranked[:100])) / len(relevant)
        mrr += next((1 / (r + 1) for r, d in enumerate(ranked[:10]) if d in relevant), 0.0)
    if run:
        run.close()
    print(json.dumps({"queries_evaluated": n, "ndcg@10": round(ndcg / n, 4), "recall@100": round(rec100 / n, 4),
                      "mrr@10": round(mrr / n, 4)}))

if __name__ == "__main__":
    main()
