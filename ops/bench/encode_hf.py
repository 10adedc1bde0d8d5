#!/usr/bin/env python3
"""Reference SPLADE document encoder: Hugging Face transformers on PyTorch CPU.

Reads a BEIR-style corpus (jsonl or jsonl.gz with _id, title, text), encodes the
documents in file order in batches, and writes one line per document:
    {"id": ..., "vector": {token: weight, ...}}   (nonzero weights only)
SPLADE pooling: logits masked by the attention mask, max over tokens, then
log1p(relu(x)); the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] are zeroed.

The last stdout line is a JSON summary; docs_per_s covers the encode loop
(tokenize + forward + pool + write), not model loading or corpus reading.
"""
import argparse
import gzip
import json
import os
import sys
import time


def open_text(path, mode):
    return gzip.open(path, mode + "t", encoding="utf-8") if path.endswith(".gz") else open(path, mode, encoding="utf-8")


def read_corpus(path, limit):
    docs = []
    with open_text(path, "r") as f:
        for line in f:
            if limit and len(docs) >= limit:
                break
            if not line.strip():
                continue
            d = json.loads(line)
            title, text = d.get("title") or "", d.get("text") or ""
            docs.append((d["_id"], f"{title} {text}" if title else text))
    return docs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="HF model folder (BertForMaskedLM)")
    ap.add_argument("--input", required=True, help="corpus.jsonl[.gz]")
    ap.add_argument("--output", required=True, help="vectors.jsonl[.gz]")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--limit", type=int, default=0, help="first N documents only (0: all)")
    args = ap.parse_args()
    if args.threads < 1 or args.batch_size < 1 or args.limit < 0:
        ap.error("--threads and --batch-size must be >= 1, --limit >= 0")

    # The Rust tokenizer parallelises batches with rayon; hold it to the same thread count.
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    import transformers
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    tokenizer.padding_side = "right"  # pooling below relies on it
    model, info = AutoModelForMaskedLM.from_pretrained(args.model, output_loading_info=True)
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:  # a silently re-initialised layer would make every number meaningless
        sys.exit(f"encode_hf: model weights did not load cleanly: {bad}")
    model.eval()

    vocab = tokenizer.convert_ids_to_tokens(list(range(model.config.vocab_size)))
    special = tokenizer.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    special = torch.tensor(special)

    docs = read_corpus(args.input, args.limit)
    if not docs:
        sys.exit(f"encode_hf: no documents in {args.input}")

    start = time.perf_counter()
    with torch.inference_mode(), open_text(args.output, "w") as out:
        for i in range(0, len(docs), args.batch_size):
            batch = docs[i:i + args.batch_size]
            enc = tokenizer([text for _, text in batch], padding=True, truncation=True,
                            max_length=512, return_tensors="pt")
            logits = model(**enc).logits                               # [B, L, V]
            # Max over each document's real tokens: the same as masking with the
            # attention mask (padding is on the right) but without copying logits.
            lengths = enc["attention_mask"].sum(dim=1).tolist()
            pooled = torch.stack([logits[j, :n].amax(dim=0) for j, n in enumerate(lengths)])
            del logits  # else two batches of logits are alive during the next forward
            weights = torch.log1p(torch.relu(pooled))                  # [B, V]
            weights[:, special] = 0
            for (doc_id, _), row in zip(batch, weights):
                idx = row.nonzero().squeeze(1)
                vec = dict(zip((vocab[j] for j in idx.tolist()), row[idx].tolist()))
                out.write(json.dumps({"id": doc_id, "vector": vec}) + "\n")
            done = i + len(batch)
            if done % 1000 < args.batch_size:
                print(f"encode_hf: {done}/{len(docs)} docs, {time.perf_counter() - start:.1f}s",
                      file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start

    print(json.dumps({
        "system": "pytorch", "docs": len(docs), "seconds_encode": round(seconds, 3),
        "docs_per_s": round(len(docs) / seconds, 2), "threads": args.threads,
        "batch_size": args.batch_size, "torch": torch.__version__,
        "transformers": transformers.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
