#!/usr/bin/env bash
# Every test of the project, in every language: Rust (and the C programs its tests compile),
# Python and Node. This is the README's test command and what .ci/run runs. It goes on after a
# failing part so one run shows every failure, and exits non-zero if any part failed.
# Needs on the machine: a Rust toolchain, a C compiler, python3 and node/npm; the system tools
# some tests drive (strace, logrotate, rsyslog, mkfs.ext4, valgrind) come from .ci/run, and a
# test that finds one missing says so and is counted as skipped.
#
# A test that cannot run here (not root, no loop device, a tool missing) prints a line starting
# with SKIPPED (Rust: ringlog-testkit's skip!, past libtest's capture; pytest: its -ra summary,
# which folds N skips with the same reason and place into one `SKIPPED [N] ...` line; Node:
# scripts/node-skip-reporter.mjs); those are counted and listed at the end, so no such test
# passes silently.
set -uo pipefail
cd "$(dirname "$0")/.."

output=$(mktemp)
trap 'rm -f "$output"' EXIT
failed=()
part() {
    local name=$1
    shift
    echo "==> $name: $*"
    "$@" 2>&1 | tee -a "$output"
    [ "${PIPESTATUS[0]}" -eq 0 ] || failed+=("$name")
}

part rust cargo test --workspace --release --no-fail-fast
part python bash scripts/test-python.sh
part python-bench bash benches/python/test.sh
part node bash scripts/test-node.sh
part node-bench bash benches/node/test.sh

skipped=$(awk '/^SKIPPED \[[0-9]+\]/ { n += substr($2, 2, length($2) - 2); next }
                /^SKIPPED/ { n++ }
                END { print n + 0 }' "$output")
echo "test-all: $skipped tests skipped because they cannot run here"
grep '^SKIPPED' "$output" | sed 's/^/  /'

if [ ${#failed[@]} -gt 0 ]; then
    echo "test-all: failed: ${failed[*]}"
    exit 1
fi
echo "test-all: every part passed"
