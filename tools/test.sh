#!/usr/bin/env bash
# The project's test command (README): fetch the real models the tests compare against (into a
# cache outside git), build the browser package (web/pkg) and the browser test driver
# (playwright-core in web/node_modules), then run every test in release mode. The browser
# tests (tests/browser.rs) also need Chromium: `apt-get install -y chromium` (.ci/run does).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/fetch_minilm.sh
bash tools/fetch_assets.sh
bash tools/build_web.sh
if [ ! -d web/node_modules/playwright-core ] || [ web/package-lock.json -nt web/node_modules ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
cargo test --release "$@"
