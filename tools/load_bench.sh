#!/usr/bin/env bash
# Load benchmark of `wgpu-infer serve` (not a test): wrk on 127.0.0.1 at concurrency 1, 8 and
# 64 against /embed (the real all-MiniLM-L6-v2, one sentence per request) and /v1/completions
# (a GPT-2 small-sized model with random weights, greedy, 16 new tokens): requests/s, p50/p99
# latency, mean batch size (from /metrics), and the batching gain. The baseline is
# `wgpu-infer embed` on the same sentences in one process (load time subtracted).
#
#   bash tools/load_bench.sh [SECONDS_PER_RUN]      (default 20)
#
# Needs: wrk (apt-get install -y wrk), a GPU adapter (lavapipe is fine), and python with
# torch + transformers to write the random GPT-2 folder (PYTHON=/path/to/python; the
# fixtures' venv has them). Every run is bounded by wrk's duration; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-20}"
PY="${PYTHON:-python3}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
bash tools/fetch_minilm.sh >/dev/null
MODELS="${WGPU_INFER_MODELS:-$HOME/.cache/wgpu-infer/models}"
MINILM="$MODELS/all-MiniLM-L6-v2"
GPT2="$MODELS/gpt2-small-random"
"$PY" tools/random_models.py "$MODELS" gpt2-small-random
cargo build --release --quiet
BIN=target/release/wgpu-infer
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
work="$(mktemp -d)"
# SERVER_LOG=path keeps the server's request log.
trap 'kill "${SERVER:-0}" 2>/dev/null || true; [ -n "${SERVER_LOG:-}" ] && cp "$work/log" "$SERVER_LOG"; rm -rf "$work"' EXIT
python3 -c "
import json
for s in json.load(open('tests/fixtures/minilm/reference.json'))['sentences'][:-1]:
    print(s.replace(chr(10), ' '))" > "$work/sentences.txt"
export SENTENCES_FILE="$work/sentences.txt" MAX_TOKENS=16

echo "# load bench $(date -u +%FT%TZ), $(nproc) cores, uptime: $(uptime | sed 's/.*load/load/')"

# Baseline: the CLI in one process, 4096 sentences vs 1 (the difference is embedding time).
for i in $(seq 171); do cat "$work/sentences.txt"; done | head -4096 > "$work/many.txt"
t1=$( { /usr/bin/time -f %e "$BIN" embed --quiet --truncate --model "$MINILM" hello >/dev/null; } 2>&1 | tail -1)
tn=$( { /usr/bin/time -f %e "$BIN" embed --quiet --truncate --model "$MINILM" < "$work/many.txt" >/dev/null; } 2>&1 | tail -1)
cli_rate=$(python3 -c "print(4095 / ($tn - $t1))")
printf 'wgpu-infer embed, one process: %.1f embeddings/s (4096 sentences in %.2f s, load %.2f s)\n' "$cli_rate" "$tn" "$t1"

"$BIN" serve --embed-model "$MINILM" --generate-model "$GPT2" --port 0 \
  --max-concurrent-requests 512 > "$work/out" 2> "$work/log" &
SERVER=$!
for _ in $(seq 600); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$work/out")
for _ in $(seq 1200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] && break; sleep 0.25
done
metric() { curl -s "$URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
# Warm up: kernels for the shapes the runs use get tuned (once per machine) and compiled.
wrk -t2 -c64 -d10s --timeout 60s -s tools/load/embed.lua "$URL" >/dev/null
wrk -t1 -c4 -d5s --timeout 60s -s tools/load/complete.lua "$URL" >/dev/null
sleep 2  # generations the warm-up left running end

run() { # route script concurrency
  local b0 c0 out rps p50 p99 b1 c1
  b0=$(metric wgpu_infer_batch_inputs_sum); c0=$(metric wgpu_infer_batch_inputs_count)
  local threads=2
  [ "$3" -lt 2 ] && threads=1
  out=$(wrk -t"$threads" -c"$3" -d"${DUR}s" --timeout 120s --latency -s "$2" "$URL")
  rps=$(awk '/Requests\/sec/ { print $2 }' <<< "$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<< "$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<< "$out")
  b1=$(metric wgpu_infer_batch_inputs_sum); c1=$(metric wgpu_infer_batch_inputs_count)
  local batch
  batch=$(python3 -c "d=$c1-$c0; print(f'{($b1-$b0)/d:.1f}' if d else '-')")
  local errs
  errs=$(awk '/Non-2xx/ { print $5 }' <<< "$out")
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$3" "$rps" "$p50" "$p99" "$batch" "${errs:-0}"
  echo "$rps" > "$work/rps-${1//\//_}-$3"
}
echo
echo "| route | concurrency | requests/s | p50 | p99 | mean batch (texts) | non-2xx |"
echo "|---|---|---|---|---|---|---|"
for c in 1 8 64; do run /embed tools/load/embed.lua "$c"; done
for c in 1 8 64; do run /v1/completions tools/load/complete.lua "$c"; done
echo
python3 - "$work" "$cli_rate" <<'PY'
import sys
w, cli = sys.argv[1], float(sys.argv[2])
r = lambda route, c: float(open(f"{w}/rps-{route.replace('/', '_')}-{c}").read())
e1, e64 = r("/embed", 1), r("/embed", 64)
print(f"batching gain (/embed, embeddings/s at 64 vs at 1): {e64 / e1:.1f}x")
print(f"/embed at 64 vs wgpu-infer embed in one process: {e64 / cli:.2f}x ({e64:.1f} vs {cli:.1f} embeddings/s)")
g1, g64 = r("/v1/completions", 1), r("/v1/completions", 64)
print(f"/v1/completions: {g1 * 16:.1f} tokens/s at 1, {g64 * 16:.1f} tokens/s at 64")
PY
echo "uptime at the end: $(uptime | sed 's/.*load/load/')"
kill -TERM "$SERVER"; wait "$SERVER" || true
