# Sourced by tools/build_wasm.sh and tools/build_web.sh: installs (when missing) and selects the
# toolchain that builds this crate for wasm32-unknown-unknown here.
#
# rustup on the CI machine has only the x86_64 target and cannot download others, so this uses
# Debian 12's rustc-web 1.96 and builds std from source (-Z build-std). Installs the Debian
# packages when missing (147 MB download, ~816 MB on disk). See NOTES.md, "The browser".

WASM_LD=/usr/lib/llvm-22/bin/wasm-ld
if [[ ! -x /usr/bin/rustc || ! -x /usr/bin/cargo || ! -x $WASM_LD || ! -d /usr/lib/rustlib/src/rust ]]; then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    echo "wasm_env: installing rustc-web cargo-web rust-web-src lld-22 from Debian" >&2
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
# The target's default linker `rust-lld` is not shipped by Debian; lld-22 provides wasm-ld.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=$WASM_LD
# A target dir of its own: different compiler and target, never clobbers the native target/.
export CARGO_TARGET_DIR=$PWD/target/wasm
# No `--cfg getrandom_backend="wasm_js"` RUSTFLAGS: since getrandom 0.3.4 the `wasm_js` feature
# (enabled in Cargo.toml for wasm32) selects that backend by itself.
WASM_OUT=$CARGO_TARGET_DIR/wasm32-unknown-unknown/release
