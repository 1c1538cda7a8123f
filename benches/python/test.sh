#!/usr/bin/env bash
# Smoke test of the Python side-by-side harness (part of scripts/test-all.sh): installs what it
# needs into a venv inside the repo (the ringlog package built from ./ringlog-python,
# concurrent-log-handler and pytest from PyPI), builds ringlog-drain, and runs
# benches/python/test_bench.py. RINGLOG_PYTHON_VENV names another venv to use.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=${RINGLOG_PYTHON_VENV:-target/python-venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check ./ringlog-python concurrent-log-handler pytest
cargo build --release -q -p ringlog-drain
"$venv/bin/python" -m pytest -q -p no:cacheprovider benches/python
