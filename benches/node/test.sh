#!/usr/bin/env bash
# Smoke test of the Node side-by-side harness (part of scripts/test-all.sh): installs pino and
# winston from the lockfile into benches/node/node_modules, builds the ringlog addon in
# ./ringlog-node when it is not built yet (its own npm install), builds ringlog-drain, and runs
# benches/node/test with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/../.."

npm ci --prefix benches/node --no-audit --no-fund --loglevel=error
if [ ! -e ringlog-node/ringlog.node ]; then
    npm install --prefix ringlog-node --no-audit --no-fund --loglevel=error
fi
cargo build --release -q -p ringlog-drain
export RINGLOG_DRAIN=${CARGO_TARGET_DIR:-$PWD/target}/release/ringlog-drain
node --test benches/node/test/
