"""A real uWSGI (pyuwsgi, the uWSGI project's wheel, from PyPI) with a master and 4 worker
processes, the app's logging configured by dictConfig at import (before the fork, uWSGI's
default, or after it with --lazy-apps), driven over its HTTP socket: every request's record is
in the drained file exactly once, written by the worker that served it."""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from conftest import requests_logged, serve_requests, wait_for

pytest.importorskip("pyuwsgi", reason="pyuwsgi is installed by scripts/test-python.sh")
# pip puts the `uwsgi` command beside the venv's python.
UWSGI = shutil.which("uwsgi", path=os.path.dirname(sys.executable))
# What a worker prints once it has loaded the app (--lazy-apps: each worker, after the fork).
APP_READY = re.compile(rb"WSGI app 0 \(mountpoint=''\) ready in \d+ seconds on interpreter \S+ pid: (\d+)")


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over uWSGI's socket file (no TCP port to race for)."""

    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)


@pytest.mark.parametrize("lazy", [False, True], ids=["app-before-fork", "lazy-apps"])
def test_uwsgi_four_workers_every_request_logged_exactly_once(ring, start_drain, tmp_path, lazy):
    assert UWSGI, "pyuwsgi is importable but its uwsgi command is not beside this python"
    drain = start_drain(ring)
    sock = str(tmp_path / "uwsgi.sock")
    args = [UWSGI, "--master", "--processes", "4", "--http-socket", sock, "--chdir", os.path.dirname(__file__),
            "--module", "uwsgi_app:application", "--die-on-term", "--disable-logging"]
    if lazy:
        args.append("--lazy-apps")
    stderr_path = tmp_path / "uwsgi.stderr"
    with open(stderr_path, "wb") as stderr:
        server = subprocess.Popen(args, stderr=stderr, env={**os.environ, "RINGLOG_TEST_RING": ring})
    try:
        def ready():
            assert server.poll() is None, stderr_path.read_text()
            stderr = stderr_path.read_bytes()
            spawned = os.path.exists(sock) and b"spawned uWSGI worker 4" in stderr
            # With --lazy-apps a worker installs its SIGINT/SIGTERM handlers only after it has
            # loaded the app (uWSGI 2.0's uwsgi_worker_run): stopped before that, it misses the
            # master's SIGINT (or gets it as a KeyboardInterrupt inside the import, then serves
            # on with no app), and the master waits out its 60 s worker mercy.
            return spawned and (not lazy or len(set(APP_READY.findall(stderr))) == 4)

        wait_for(ready, "uWSGI to spawn its 4 workers" + (" and each to load the app" if lazy else ""))
        clients, per_client = 4, 100
        served = serve_requests(lambda: UnixHTTPConnection(sock), clients, per_client)
    finally:
        # SIGTERM, as a process manager stops it: with --die-on-term the master sends each worker
        # SIGINT and exits once they are gone.
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    drain.stop()

    logged = requests_logged(drain.records())
    assert logged == served, "every request logged exactly once, by the worker that served it"
    assert len(logged) == clients * per_client
    assert server.pid not in set(served.values()), "served by the workers, not the master"
    boots = [r for r in drain.records() if r["target"] == "app.boot"]
    loaded = [int(r["msg"].rsplit(" ", 1)[1]) for r in boots]
    assert [r["pid"] for r in boots] == loaded, "each process logs with its own pid"
    if lazy:
        assert len(loaded) >= 4 and server.pid not in loaded, "each worker loaded the app after the fork"
    else:
        assert loaded == [server.pid], "the master loaded the app once, before forking"
    print(f"requests served by {len(set(served.values()))} distinct workers")
