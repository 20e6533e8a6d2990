#!/usr/bin/env bash
# Proves the library's core builds for the browser (wasm32-unknown-unknown).
#
# rustup on the CI machine has only the x86_64 target and cannot download others, so this uses
# Debian 12's rustc-web 1.96 and builds std from source (-Z build-std). Installs the Debian
# packages when missing (147 MB download, ~816 MB on disk). Extra arguments go to cargo, e.g.
#   tools/build_wasm.sh --features mmap      tools/build_wasm.sh -v
# Output goes to target/wasm so it never clobbers the native build. See NOTES.md, "The browser".
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_LD=/usr/lib/llvm-22/bin/wasm-ld
if [[ ! -x /usr/bin/rustc || ! -x /usr/bin/cargo || ! -x $WASM_LD || ! -d /usr/lib/rustlib/src/rust ]]; then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    echo "build_wasm: installing rustc-web cargo-web rust-web-src lld-22 from Debian" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        rustc-web cargo-web rust-web-src lld-22
fi

# rustup's ~/.cargo/bin usually comes first on PATH; put Debian's toolchain first so cargo and
# anything it spawns (build scripts, proc macros) use the same rustc 1.96.
export PATH=/usr/bin:$PATH
# Debian's cargo would otherwise still honour a RUSTC pointing at rustup's rustc.
export RUSTC=/usr/bin/rustc
# -Z build-std is nightly-only; this lets Debian's stable rustc/cargo accept it (std sources come
# from rust-web-src, installed where build-std looks: /usr/lib/rustlib/src/rust).
export RUSTC_BOOTSTRAP=1
# The target's default linker `rust-lld` is not shipped by Debian; lld-22 provides wasm-ld. Only
# used when something links (a cdylib, an example, tests); the rlib itself needs no linker.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=$WASM_LD
# A target dir of its own: different compiler and target, never clobbers the native target/.
export CARGO_TARGET_DIR=$PWD/target/wasm
# No `--cfg getrandom_backend="wasm_js"` RUSTFLAGS: since getrandom 0.3.4 the `wasm_js` feature
# (enabled in Cargo.toml for wasm32) selects that backend by itself.

start=$SECONDS
/usr/bin/cargo build --lib --release --no-default-features \
    --target wasm32-unknown-unknown -Z build-std=std,panic_abort "$@"

# Report what was built: the library's .rlib (name from [lib] name, else the package name).
lib=$(sed -n '/^\[lib\]/,/^\[/s/^name *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n1)
[[ -n $lib ]] || lib=$(sed -n '/^\[package\]/,/^\[/s/^name *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n1)
lib=${lib//-/_}
out=$CARGO_TARGET_DIR/wasm32-unknown-unknown/release
echo "build_wasm: $(/usr/bin/rustc -V), $((SECONDS - start)) s"
if [[ -f $out/lib$lib.rlib ]]; then
    echo "build_wasm: built $(du -h "$out/lib$lib.rlib" | cut -f1) $out/lib$lib.rlib"
else
    echo "build_wasm: built (no lib$lib.rlib in $out; custom profile?)"
    ls -l "$out"
fi
