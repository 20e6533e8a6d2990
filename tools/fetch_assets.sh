#!/usr/bin/env bash
# Fetches the sample images the ViT and YOLO tests use (bus.jpg, zidane.jpg), taken from the
# ultralytics wheel on PyPI (no dependencies installed), into a cache outside git:
#   ${WGPU_INFER_MODELS:-~/.cache/wgpu-infer/models}/assets/
# Idempotent. Needs python3 with pip and access to PyPI.
set -euo pipefail
models="${WGPU_INFER_MODELS:-$HOME/.cache/wgpu-infer/models}"
dest="$models/assets"
if [ -f "$dest/bus.jpg" ] && [ -f "$dest/zidane.jpg" ]; then
  echo "assets already in $dest"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps -d "$tmp" "ultralytics==8.4.190"
python3 - "$tmp" "$dest" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "ultralytics-*.whl"))[0]
z = zipfile.ZipFile(wheel)
os.makedirs(dest, exist_ok=True)
for name in ("bus.jpg", "zidane.jpg"):
    data = z.read(f"ultralytics/assets/{name}")
    part = os.path.join(dest, name + ".partial")
    open(part, "wb").write(data)
    os.replace(part, os.path.join(dest, name))
print("assets ->", dest)
PY
