"""PyTorch (CPU, 2 threads by default) on the same end-to-end workloads as `wgpu-infer bench`
(random-init models of the real sizes, same input sizes), so the README can quote ratios
measured on the same machine. Called by `wgpu-infer bench --torch PYTHON`; also usable alone:

    python tools/bench_torch.py models [--quick] [--threads 2] [--json out.json]
    python tools/bench_torch.py minilm --model DIR     # the real all-MiniLM-L6-v2 with sentence-transformers

Prints one JSON object per workload: {"model", "workload", "ms", "rate", "unit", "threads"};
"model" and "workload" match wgpu-infer's names.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fixtures"))
import common  # noqa: E402,F401  (offline environment, no writes to ~)

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


def result(model, workload, secs, rate, unit, threads):
    return {"model": model, "workload": workload, "ms": secs * 1e3, "rate": rate, "unit": unit, "threads": threads}


def models(args):
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, ViTConfig, ViTForImageClassification

    reps = 3 if args.quick else 7
    out = []
    with torch.inference_mode():
        cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                         intermediate_size=1536, max_position_embeddings=512)
        bert = BertModel(cfg, add_pooling_layer=False).eval()
        for b in (1, 32, 64):
            ids = (torch.arange(b * 18).reshape(b, 18) * 7919) % 30000 + 100
            mask = torch.ones_like(ids)
            s = timeit(lambda: bert(input_ids=ids, attention_mask=mask), reps)
            out.append(result("MiniLM-L6 (random weights)", f"batch {b} x 18 tokens", s, b / s, "sentences/s", args.threads))

        gpt = GPT2LMHeadModel(GPT2Config()).eval()
        prompt = (torch.arange(16)[None] * 3001) % 50000
        s_pre = timeit(lambda: gpt(input_ids=prompt, use_cache=True), reps)
        out.append(result("GPT-2 small (random weights)", "prefill 16 tokens", s_pre, 16 / s_pre, "tokens/s", args.threads))
        n = 32
        gen = lambda: gpt.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,  # noqa: E731
                                   max_new_tokens=n, min_new_tokens=n, pad_token_id=0)
        s_gen = timeit(gen, 2 if args.quick else 3)
        per = (s_gen - s_pre) / (n - 1)
        out.append(result("GPT-2 small (random weights)", f"decode {n} tokens (KV cache)", per, 1 / per, "tokens/s", args.threads))

        vit = ViTForImageClassification(ViTConfig()).eval()
        for b in ((1,) if args.quick else (1, 8)):
            pix = torch.rand(b, 3, 224, 224) * 2 - 1
            s = timeit(lambda: vit(pixel_values=pix), max(2, reps // 2))
            out.append(result("ViT-B/16 224 (random weights)", f"batch {b}", s, b / s, "images/s", args.threads))

    from ultralytics import YOLO

    yolo = YOLO("yolov8n.yaml")
    net = yolo.model.eval()
    x = torch.rand(1, 3, 640, 640) * 0.5
    with torch.inference_mode():
        s = timeit(lambda: net(x), reps)
    out.append(result("YOLOv8n 640", "network, 640x640", s, 1 / s, "images/s", args.threads))
    bus = os.path.join(ROOT, "tests", "fixtures", "yolo", "bus_decoded.png")
    if os.path.isfile(bus):
        s = timeit(lambda: yolo.predict(bus, imgsz=640, verbose=False, device="cpu"), reps)
        out.append(result("YOLOv8n 640", "predict bus.jpg (letterbox 640x480, NMS)", s, 1 / s, "images/s", args.threads))
    return out


def minilm(args):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.model, device="cpu", model_kwargs={"dtype": torch.float32})
    sentences = [l.strip() for l in open(os.path.join(ROOT, "benches", "data", "sentences.txt")) if l.strip()]
    out = []
    for batch in (1, 32, 64):
        texts = sentences[:batch]
        with torch.inference_mode():
            s = timeit(lambda: model.encode(texts, batch_size=batch, normalize_embeddings=False), 5)
        out.append(result("all-MiniLM-L6-v2 (sentence-transformers)", f"embed {batch} sentences", s, batch / s, "sentences/s", args.threads))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=["models", "minilm"])
    p.add_argument("--model", help="sentence-transformers folder (minilm)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    res = {"models": models, "minilm": minilm}[args.workload](args)
    for r in res:
        print(json.dumps(r), file=sys.stderr)
    if args.json:
        json.dump(res, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
