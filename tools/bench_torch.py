"""PyTorch (CPU, 2 threads by default) on the same end-to-end workloads as `wgpu-infer bench`
(random-init models of the real sizes, same input sizes), so the README can quote ratios
measured on the same machine. Called by `wgpu-infer bench --torch PYTHON`; also usable alone:

    python tools/bench_torch.py models [--quick] [--threads 2] [--json out.json]
    python tools/bench_torch.py minilm --model DIR     # the real all-MiniLM-L6-v2 with sentence-transformers
    python tools/bench_torch.py serve [--threads 2]    # JSON lines on stdin/stdout (what the bench uses)

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


class Workloads:
    """The bench's PyTorch workloads, built on first use. `call(model, workload)` runs one
    repetition and returns its seconds per call (for GPT-2 decode: seconds per new token)."""

    GPT2_NEW = 32

    def __init__(self):
        self._models = {}
        self._warm = set()

    def _model(self, name):
        if name not in self._models:
            from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, ViTConfig, ViTForImageClassification

            if name == "bert":
                cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                 intermediate_size=1536, max_position_embeddings=512)
                self._models[name] = BertModel(cfg, add_pooling_layer=False).eval()
            elif name == "gpt2":
                self._models[name] = GPT2LMHeadModel(GPT2Config()).eval()
            elif name == "vit":
                self._models[name] = ViTForImageClassification(ViTConfig()).eval()
            elif name == "yolo":
                from ultralytics import YOLO

                self._models[name] = YOLO("yolov8n.yaml")
            elif name == "mpnet":
                from transformers import MPNetConfig, MPNetModel

                cfg = MPNetConfig(vocab_size=30527, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                  intermediate_size=3072, max_position_embeddings=514, layer_norm_eps=1e-5)
                self._models[name] = MPNetModel(cfg).eval()
            elif name == "dinov2":
                from transformers import Dinov2Config, Dinov2Model

                cfg = Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
                                   image_size=518, patch_size=14, layer_norm_eps=1e-6)
                self._models[name] = Dinov2Model(cfg).eval()
            elif name == "clip":
                from transformers import CLIPConfig, CLIPModel

                self._models[name] = CLIPModel(CLIPConfig(text_config={}, vision_config={"patch_size": 32})).eval()
            elif name == "smollm2":
                from transformers import LlamaConfig, LlamaForCausalLM

                # HuggingFaceTB/SmolLM2-135M's config (random weights).
                cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                  num_attention_heads=9, num_key_value_heads=3, head_dim=64,
                                  max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
                                  tie_word_embeddings=True, bos_token_id=0, eos_token_id=0, pad_token_id=0)
                self._models[name] = LlamaForCausalLM(cfg).eval()
            elif name in ("yolo11", "yolo11-seg"):
                from ultralytics import YOLO

                # Random weights of the fixtures' architecture (the speed does not depend on them).
                self._models[name] = YOLO("yolo11n.yaml" if name == "yolo11" else "yolo11n-seg.yaml")
        return self._models[name]

    def names(self):
        out = [("MiniLM-L6 (random weights)", f"batch {b} x 18 tokens") for b in (1, 32, 64)]
        out += [("GPT-2 small (random weights)", "prefill 16 tokens"),
                ("GPT-2 small (random weights)", f"decode {self.GPT2_NEW} tokens (KV cache)")]
        out += [("ViT-B/16 224 (random weights)", f"batch {b}") for b in (1, 8)]
        out += [("YOLOv8n 640", "network, 640x640"), ("YOLOv8n 640", "predict bus.jpg (letterbox 640x480, NMS)")]
        out += [("MPNet-base (random weights)", f"batch {b} x 18 tokens") for b in (1, 32)]
        out += [("DINOv2-S/14 (random weights)", "batch 1 at 224 px (positions resized from 518)"),
                ("CLIP ViT-B/32 (random weights)", "image batch 1"),
                ("CLIP ViT-B/32 (random weights)", "text batch 8 x 7 tokens"),
                ("YOLO11n 640", "network, 640x640"), ("YOLO11n 640", "predict bus.jpg (letterbox 640x480, NMS)"),
                ("YOLO11n-seg 640", "predict bus.jpg (letterbox 640x480, NMS, masks)"),
                ("SmolLM2-135M (random weights)", "prefill 16 tokens"),
                ("SmolLM2-135M (random weights)", f"decode {self.GPT2_NEW} tokens (KV cache)")]
        return out

    def _fn(self, model, workload):
        """(callable returning seconds per item, items per call, unit)."""
        def timed(f):
            def g():
                t0 = time.perf_counter()
                f()
                return time.perf_counter() - t0
            return g

        if model.startswith("MiniLM"):
            b = int(workload.split()[1])
            bert = self._model("bert")
            ids = (torch.arange(b * 18).reshape(b, 18) * 7919) % 30000 + 100
            mask = torch.ones_like(ids)
            return timed(lambda: bert(input_ids=ids, attention_mask=mask)), b, "sentences/s"
        if model.startswith("GPT-2") or model.startswith("SmolLM2"):
            gpt, vocab = (self._model("gpt2"), 50257) if model.startswith("GPT-2") else (self._model("smollm2"), 49152)
            prompt = (torch.arange(16)[None] * 3001) % (vocab - 100)
            pre = timed(lambda: gpt(input_ids=prompt, use_cache=True))
            if workload.startswith("prefill"):
                return pre, 16, "tokens/s"
            n = self.GPT2_NEW
            gen = timed(lambda: gpt.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                             max_new_tokens=n, min_new_tokens=n, pad_token_id=0))
            return (lambda: (gen() - pre()) / (n - 1)), 1, "tokens/s"
        if model.startswith("ViT"):
            b = int(workload.split()[1])
            vit = self._model("vit")
            g = torch.Generator().manual_seed(12)
            pix = torch.rand(b, 3, 224, 224, generator=g) * 2 - 1
            return timed(lambda: vit(pixel_values=pix)), b, "images/s"
        if model.startswith("MPNet"):
            b = int(workload.split()[1])
            mpnet = self._model("mpnet")
            ids = (torch.arange(b * 18).reshape(b, 18) * 7919) % 30000 + 100
            ids[:, 0], ids[:, -1] = 0, 2
            mask = torch.ones_like(ids)
            return timed(lambda: mpnet(input_ids=ids, attention_mask=mask)), b, "sentences/s"
        if model.startswith("DINOv2"):
            dino = self._model("dinov2")
            g = torch.Generator().manual_seed(14)
            pix = torch.rand(1, 3, 224, 224, generator=g) * 2 - 1
            return timed(lambda: dino(pixel_values=pix)), 1, "images/s"
        if model.startswith("CLIP"):
            clip = self._model("clip")
            if workload.startswith("image"):
                g = torch.Generator().manual_seed(15)
                pix = torch.rand(1, 3, 224, 224, generator=g) * 2 - 1
                return timed(lambda: clip.get_image_features(pixel_values=pix)), 1, "images/s"
            ids = (torch.arange(8 * 7).reshape(8, 7) * 7919) % 30000 + 100
            ids[:, 0], ids[:, -1] = 49406, 49407
            mask = torch.ones_like(ids)
            return timed(lambda: clip.get_text_features(input_ids=ids, attention_mask=mask)), 8, "texts/s"
        if model.startswith("YOLO11"):
            yolo = self._model("yolo11-seg" if "seg" in model else "yolo11")
            bus = os.path.join(ROOT, "tests", "fixtures", "yolo", "bus_decoded.png")
            if workload.startswith("network"):
                net = yolo.model.eval()
                x = torch.rand(1, 3, 640, 640) * 0.5
                return timed(lambda: net(x)), 1, "images/s"
            return timed(lambda: yolo.predict(bus, imgsz=640, verbose=False, device="cpu")), 1, "images/s"
        if model.startswith("YOLO"):
            yolo = self._model("yolo")
            if workload.startswith("network"):
                net = yolo.model.eval()
                x = torch.rand(1, 3, 640, 640) * 0.5
                return timed(lambda: net(x)), 1, "images/s"
            bus = os.path.join(ROOT, "tests", "fixtures", "yolo", "bus_decoded.png")
            return timed(lambda: yolo.predict(bus, imgsz=640, verbose=False, device="cpu")), 1, "images/s"
        raise KeyError(f"unknown workload {model!r} / {workload!r}")

    def run(self, model, workload, reps):
        """`reps` timings (seconds per call), after one warm-up call the first time."""
        f, items, unit = self._fn(model, workload)
        with torch.inference_mode():
            if (model, workload) not in self._warm:
                f()
                self._warm.add((model, workload))
            return [f() for _ in range(reps)], items, unit


def models(args):
    w = Workloads()
    reps = 3 if args.quick else 7
    out = []
    for model, workload in w.names():
        if args.quick and workload == "batch 8":
            continue
        decoder = model.startswith("GPT-2") or model.startswith("SmolLM2")
        r = 2 if (decoder and "decode" in workload) or model.startswith("ViT") else reps
        secs, items, unit = w.run(model, workload, r)
        s = statistics.median(secs)
        out.append(result(model, workload, s, items / s, unit, args.threads))
    return out


def serve(args):
    """One JSON request per stdin line, one JSON answer per stdout line, until EOF:
    {"model", "workload", "reps"} -> {"secs": [seconds per call, one per rep], "items", "unit", "threads"}
    or {"error": message}. `wgpu-infer bench --torch` alternates these with its own repetitions."""
    w = Workloads()
    out = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not corrupt the protocol
    print(json.dumps({"ready": True, "threads": args.threads}), file=out, flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            secs, items, unit = w.run(req["model"], req["workload"], int(req.get("reps", 1)))
            ans = {"secs": secs, "items": items, "unit": unit, "threads": args.threads}
        except Exception as e:  # reported to the caller, which decides
            ans = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(ans), file=out, flush=True)
    return None


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
    p.add_argument("workload", choices=["models", "minilm", "serve"])
    p.add_argument("--model", help="sentence-transformers folder (minilm)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    res = {"models": models, "minilm": minilm, "serve": serve}[args.workload](args)
    if res is None:
        return
    for r in res:
        print(json.dumps(r), file=sys.stderr)
    if args.json:
        json.dump(res, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
