#!/usr/bin/env bash
# The Python part of scripts/test-all.sh: builds and installs the `ringlog` wheel from
# ./ringlog-python into a venv inside the repo (target/py-venv, gitignored), with pytest and
# what the tests drive (gunicorn, pyuwsgi, celery, loguru, structlog) from PyPI, then runs the pytest suite
# against the INSTALLED package and a real ringlog-drain (built by cargo, passed in
# $RINGLOG_DRAIN); before that, builds the source distribution and installs it into a new venv
# outside the repository (see below). pytest's "no tests collected" (exit 5) fails like any
# other failure.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=target/py-venv
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" || {
        echo "test-python: cannot create a venv with $python (Debian: apt-get install python3-venv)"
        exit 1
    }
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.5,<2" pytest gunicorn pyuwsgi celery loguru structlog
# Builds the wheel with maturin (pyproject's build backend), as `pip install ./ringlog-python`
# does on a user's machine; --force-reinstall so an unchanged version number still reinstalls.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
    ./ringlog-python

drain=target/release/ringlog-drain
[ -x "$drain" ] || cargo build --release -p ringlog-drain
export RINGLOG_DRAIN=$PWD/$drain

# The source distribution builds anywhere: `maturin sdist` (it carries the Rust crates the
# extension is built from), then `pip install` of it into a new venv outside the repository,
# which builds the extension from the sdist's own sources; a record written through it must
# reach a real drain's file.
# shellcheck source=scripts/drained-line.sh
. scripts/drained-line.sh
sdist=$(mktemp -d)
trap 'rm -rf "$sdist"' EXIT
# (cargo's warnings about the crates' metadata go to its log, shown if it fails).
"$venv/bin/maturin" sdist -m ringlog-python/Cargo.toml -o "$sdist/dist" >"$sdist/sdist.log" 2>&1 || {
    cat "$sdist/sdist.log"
    exit 1
}
"$python" -m venv "$sdist/venv"
(cd "$sdist" && venv/bin/python -m pip install --quiet --disable-pip-version-check dist/ringlog-*.tar.gz)
ring="python-sdist-$$"
(cd "$sdist" && venv/bin/python -c "
import ringlog
w = ringlog.Writer('$ring')
assert w.write(b'installed from the sdist') is True
w.close()
")
drained_line "$ring" "$sdist/out.log" 'installed from the sdist' || {
    echo "test-python: the record written through the sdist's package did not reach the file"
    exit 1
}
echo "test-python: maturin sdist, then pip install of it outside the repository: builds, loads, writes"

# From inside the tests directory nothing puts ./ringlog-python/python on sys.path; conftest
# also refuses a `ringlog` imported from the source tree.
cd ringlog-python/tests
status=0
"../../$venv/bin/python" -m pytest -p no:cacheprovider -ra -q . || status=$?
if [ "$status" -eq 5 ]; then
    echo "test-python: pytest collected no tests: that is a failure"
fi
exit "$status"
