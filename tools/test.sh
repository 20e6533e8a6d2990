#!/usr/bin/env bash
# The project's test command (README): fetch the real models the tests compare against (into a
# cache outside git), then run every test in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/fetch_minilm.sh
bash tools/fetch_assets.sh
cargo test --release "$@"
