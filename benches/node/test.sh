#!/usr/bin/env bash
# Smoke test of the Node side-by-side harness (a part of scripts/test-all.sh, after the Node
# part): installs pino and winston from benches/node's lockfile into benches/node/node_modules
# (gitignored), uses the addon scripts/test-node.sh built in ./ringlog-node (run alone, builds
# it the same way, `npm ci` there, when it is missing), and runs benches/node/test with node's
# test runner against a real ringlog-drain.
set -euo pipefail
cd "$(dirname "$0")/../.."

npm ci --prefix benches/node --no-audit --no-fund --loglevel=error
if [ ! -e ringlog-node/ringlog.node ]; then
    (cd ringlog-node && npm ci --no-audit --no-fund --loglevel=error)
fi
# The drain the cargo part built (it runs first); built here when missing.
export RINGLOG_DRAIN=${RINGLOG_DRAIN:-$PWD/target/release/ringlog-drain}
[ -x "$RINGLOG_DRAIN" ] || cargo build --release -p ringlog-drain --bin ringlog-drain
# Skipped tests print `SKIPPED: test: why` for test-all.sh's count (scripts/node-skip-reporter.mjs).
node --test --test-reporter=tap --test-reporter-destination=stdout \
    --test-reporter=./scripts/node-skip-reporter.mjs --test-reporter-destination=stdout \
    benches/node/test/
