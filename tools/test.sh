#!/usr/bin/env bash
# The project's test command (README): fetch the real models the tests compare against, then
# run every test in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release "$@"
