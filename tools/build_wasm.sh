#!/usr/bin/env bash
# Proves the library's core builds for the browser (wasm32-unknown-unknown).
# The toolchain (Debian's rustc-web with -Z build-std, installed when missing) comes from
# tools/wasm_env.sh. Extra arguments go to cargo, e.g.
#   tools/build_wasm.sh --features mmap      tools/build_wasm.sh -v
# Output goes to target/wasm so it never clobbers the native build. See NOTES.md, "The browser".
set -euo pipefail
cd "$(dirname "$0")/.."

source tools/wasm_env.sh

start=$SECONDS
/usr/bin/cargo build --lib --release --no-default-features \
    --target wasm32-unknown-unknown -Z build-std=std,panic_abort "$@"

# Report what was built: the library's .rlib (name from [lib] name, else the package name).
lib=$(sed -n '/^\[lib\]/,/^\[/s/^name *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n1)
[[ -n $lib ]] || lib=$(sed -n '/^\[package\]/,/^\[/s/^name *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n1)
lib=${lib//-/_}
out=$WASM_OUT
echo "build_wasm: $(/usr/bin/rustc -V), $((SECONDS - start)) s"
if [[ -f $out/lib$lib.rlib ]]; then
    echo "build_wasm: built $(du -h "$out/lib$lib.rlib" | cut -f1) $out/lib$lib.rlib"
else
    echo "build_wasm: built (no lib$lib.rlib in $out; custom profile?)"
    ls -l "$out"
fi
