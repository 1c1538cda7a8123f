#!/usr/bin/env bash
# Smoke test of the Python side-by-side harness (a part of scripts/test-all.sh, after the
# Python part): uses the venv scripts/test-python.sh made (target/py-venv, with the ringlog
# wheel it built from ./ringlog-python), adds concurrent-log-handler from PyPI, and runs
# benches/python/test_bench.py against a real ringlog-drain. Run alone, it installs the wheel
# the same way when the venv has none.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/py-venv
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
if ! "$venv/bin/python" -c "import ringlog" 2>/dev/null; then
    "${pip[@]}" "maturin>=1.5,<2"
    "${pip[@]}" --force-reinstall --no-deps ./ringlog-python
fi
"${pip[@]}" pytest concurrent-log-handler

# The drain the cargo part built (it runs first); built here when missing.
export RINGLOG_DRAIN=${RINGLOG_DRAIN:-$PWD/target/release/ringlog-drain}
[ -x "$RINGLOG_DRAIN" ] || cargo build --release -p ringlog-drain --bin ringlog-drain

status=0
"$venv/bin/python" -m pytest -p no:cacheprovider -ra -q benches/python || status=$?
if [ "$status" -eq 5 ]; then
    echo "python-bench: pytest collected no tests: that is a failure"
fi
exit "$status"
