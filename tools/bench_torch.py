"""PyTorch (CPU, 2 threads by default) on the same end-to-end workloads as `wgpu-infer bench`
and benches/models.rs, so the README can quote ratios measured on the same machine.

python tools/bench_torch.py minilm --model DIR [--threads 2] [--json out.json]
Prints one JSON object per workload: {"workload", "batch", "median_s", "per_s", "unit"}.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fixtures"))
import common  # noqa: E402,F401  (offline environment)

import torch  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def timeit(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def minilm(args):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.model, device="cpu", model_kwargs={"dtype": torch.float32})
    sentences = [l.strip() for l in open(os.path.join(ROOT, "benches", "data", "sentences.txt")) if l.strip()]
    out = []
    for batch in (1, 32, 64):
        texts = sentences[:batch]
        with torch.inference_mode():
            s = timeit(lambda: model.encode(texts, batch_size=batch, normalize_embeddings=False), args.reps)
        out.append({"workload": "minilm", "batch": batch, "median_s": s, "per_s": batch / s, "unit": "sentences/s"})
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=["minilm"])
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    res = {"minilm": minilm}[args.workload](args)
    for r in res:
        print(json.dumps(r))
    if args.json:
        json.dump(res, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
