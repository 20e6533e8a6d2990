#!/usr/bin/env bash
# Builds the browser package: the crate with feature `web` for wasm32, through wasm-bindgen
# (--target web) into web/pkg/ (wgpu_infer.js with a default export init(), wgpu_infer.d.ts,
# wgpu_infer_bg.wasm, snippets/). Installs what it needs when missing: Debian's rustc-web
# toolchain (tools/wasm_env.sh) and wasm-bindgen-cli at exactly the wasm-bindgen version of
# Cargo.lock (cargo install into the cargo home, ~3-6 min once).
#
#   bash tools/build_web.sh            build web/pkg
#   bash tools/build_web.sh serve [P]  build, link the demo's models into web/models/, and serve
#                                      web/ on http://127.0.0.1:P/ (default 8000)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# wasm-bindgen-cli must match the wasm-bindgen crate exactly (its wire format is unversioned).
want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
[[ -n $want ]] || { echo "build_web: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
cargo_home=${CARGO_HOME:-$HOME/.cargo}
bindgen=$cargo_home/bin/wasm-bindgen
have=$("$bindgen" --version 2>/dev/null | awk '{print $2}' || true)
if [[ $have != "$want" ]]; then
    echo "build_web: installing wasm-bindgen-cli $want (have: ${have:-none})" >&2
    # rustup's cargo, the native target dir of its own; --locked fails here (see NOTES.md).
    env -u CARGO_TARGET_DIR -u RUSTC cargo install --quiet wasm-bindgen-cli --version "=$want"
fi

source tools/wasm_env.sh

start=$SECONDS
/usr/bin/cargo rustc --lib --release --no-default-features --features web \
    --target wasm32-unknown-unknown -Z build-std=std,panic_abort --crate-type cdylib
wasm=$WASM_OUT/wgpu_infer.wasm
rm -rf web/pkg
"$bindgen" --target web --out-dir web/pkg --out-name wgpu_infer "$wasm"
bg=web/pkg/wgpu_infer_bg.wasm
raw=$(stat -c %s "$bg")
gz=$(gzip -9 -c "$bg" | wc -c)
echo "build_web: web/pkg in $((SECONDS - start)) s; wasm $((raw / 1024)) KiB raw, $((gz / 1024)) KiB gzipped"

if [[ ${1:-} == serve ]]; then
    port=${2:-8000}
    models=${WGPU_INFER_MODELS:-$HOME/.cache/wgpu-infer/models}
    bash tools/fetch_minilm.sh
    bash tools/fetch_assets.sh
    mkdir -p web/models
    ln -sfn "$models/all-MiniLM-L6-v2" web/models/all-MiniLM-L6-v2
    ln -sfn "$models/assets" web/models/assets
    ln -sfn "$root/tests/fixtures/gpt2/tiny_a" web/models/gpt2-tiny
    ln -sfn "$root/tests/fixtures/vit/tiny_cls" web/models/vit-tiny
    ln -sfn "$root/tests/fixtures/yolo/yolov8n" web/models/yolov8n
    echo "build_web: serving web/ on http://127.0.0.1:$port/ (Ctrl-C stops)"
    exec python3 -m http.server --bind 127.0.0.1 -d web "$port"
fi
