#!/usr/bin/env bash
# Browser benchmark (not a test): web/bench.html run headless in Chromium (WebGPU on SwiftShader
# here) and the same workloads natively (`wgpu-infer bench --web-peer`, lavapipe here), in one
# run: load (cold: cache cleared; then from the Cache API after a reload), first call (plan
# compiles and autotuning) and the median of warm calls; plus the wasm size raw and gzipped.
# The two adapters are different software renderers on the same CPU: the ratio compares the
# whole stacks (browser + SwiftShader vs native + lavapipe), not our kernels alone.
#
#   bash tools/bench_web.sh [REPS]        (default 3 warm calls per workload)
#
# Workloads: all-MiniLM-L6-v2 (real) at 1 and 32 sentences, YOLOv8n (fixture, real size) on
# bus.jpg, and with PYTHON (torch + transformers) the random-weight GPT-2 small and ViT-B/16
# folders of tools/random_models.py (skipped without it).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS="${1:-3}"
PY="${PYTHON:-python3}"
MODELS="${WGPU_INFER_MODELS:-$HOME/.cache/wgpu-infer/models}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

bash tools/fetch_minilm.sh >/dev/null
bash tools/fetch_assets.sh >/dev/null
bash tools/build_web.sh | tail -n 1
[ -d web/node_modules/playwright-core ] || (cd web && npm ci --no-audit --no-fund --loglevel=error)
extra=1
"$PY" tools/random_models.py "$MODELS" || { extra=0; echo "bench_web: no torch/transformers in $PY: GPT-2 small and ViT-B skipped" >&2; }
cargo build --release --quiet
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$work/spec.json" "$MODELS" "$PWD" "$REPS" "$extra" <<'PY'
import json, sys
out, models, repo, reps, extra = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
sentences = json.load(open(f"{repo}/tests/fixtures/minilm/reference.json"))["sentences"]
batch = (sentences * 2)[:32]
bus = {"image": "/models/assets/bus.jpg", "imagePath": f"{models}/assets/bus.jpg"}
w = [
    {"name": "all-MiniLM-L6-v2 embed, 1 sentence", "family": "bert", "unit": "sentences/s",
     "texts": batch[:1], "model": "/models/all-MiniLM-L6-v2/", "dir": f"{models}/all-MiniLM-L6-v2"},
    {"name": "all-MiniLM-L6-v2 embed, 32 sentences", "family": "bert", "unit": "sentences/s",
     "texts": batch, "model": "/models/all-MiniLM-L6-v2/", "dir": f"{models}/all-MiniLM-L6-v2"},
    {"name": "YOLOv8n detect bus.jpg", "family": "yolo", "unit": "images/s",
     "model": "/fixtures/yolo/yolov8n/", "dir": f"{repo}/tests/fixtures/yolo/yolov8n", **bus},
]
if extra:
    w += [
        {"name": "ViT-B/16 (random) classify bus.jpg", "family": "vit", "unit": "images/s",
         "model": "/models/vit-base-random/", "dir": f"{models}/vit-base-random", **bus},
        {"name": "GPT-2 small (random) 13-token prompt + 32 greedy tokens", "family": "gpt2",
         "unit": "tokens/s", "prompt": "Once upon a time the kernel", "maxNewTokens": 32,
         "model": "/models/gpt2-small-random/", "dir": f"{models}/gpt2-small-random"},
    ]
json.dump({"reps": reps, "workloads": w}, open(out, "w"), indent=1)
PY

echo "bench_web: load at start: $(uptime | sed 's/.*load average: //')"
cat > "$work/job.json" <<EOF
{ "page": "/bench.html?spec=/scratch/spec.json",
  "mounts": { "/models/": "$MODELS", "/fixtures/": "$PWD/tests/fixtures", "/scratch/": "$work" },
  "steps": [ { "op": "demo", "fn": "info" }, { "op": "demo", "fn": "runAll" },
             { "op": "reload" }, { "op": "demo", "fn": "runCachedLoads" } ] }
EOF
node web/tests/browser.mjs "$work/job.json" > "$work/browser.json"
target/release/wgpu-infer bench --web-peer "$work/spec.json" > "$work/native.json"
echo "bench_web: load at end: $(uptime | sed 's/.*load average: //')"

python3 - "$work" <<'PY'
import gzip, json, os, sys
work = sys.argv[1]
b = json.load(open(f"{work}/browser.json"))
res = b["results"]
for i, r in enumerate(res):
    if not r.get("ok", False):
        sys.exit(f"bench_web: browser step {i} failed: {r.get('error')}")
info, web, cached = res[0]["value"], res[1]["value"], res[3]["value"]
nat = {n["name"]: n for n in json.load(open(f"{work}/native.json"))}
spec = {w["name"]: w for w in json.load(open(f"{work}/spec.json"))["workloads"]}
wasm = open("web/pkg/wgpu_infer_bg.wasm", "rb").read()
print(f"\nBrowser: headless Chromium, WebGPU adapter '{info['name']}' ({info['backend']}); "
      f"native: wgpu-infer on this machine's Vulkan adapter (lavapipe). Different software adapters on the same 2 cores.")
print(f"wasm: {len(wasm)/2**20:.2f} MiB raw, {len(gzip.compress(wasm, 9))/2**20:.2f} MiB gzipped\n")
print("| workload | browser warm ms | native warm ms | browser / native time | browser throughput | browser first call ms | native first call ms | browser load ms (download) | browser load ms (Cache API) | native load ms |")
print("|---|---|---|---|---|---|---|---|---|---|")
for w, c in zip(web, cached):
    n = nat[w["name"]]
    unit = spec[w["name"]]["unit"]
    thr = w["items"] / (w["medianMs"] / 1e3)
    print(f"| {w['name']} | {w['medianMs']:.1f} | {n['medianMs']:.1f} | {w['medianMs']/n['medianMs']:.2f}x | "
          f"{thr:.2f} {unit} | {w['firstMs']:.0f} | {n['firstMs']:.0f} | {w['loadMs']:.0f} | {c['loadMs']:.0f}{'' if c['allCached'] else ' (not cached)'} | {n['loadMs']:.0f} |")
PY
