"""A real gunicorn (from PyPI) with 4 workers, logging configured by dictConfig through
gunicorn's logconfig_dict, driven over loopback: every request's record is in the drained
file exactly once, written by the worker that served it."""

import http.client
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import requests_logged, serve_requests, wait_for

gunicorn = pytest.importorskip("gunicorn", reason="gunicorn is installed by scripts/test-all.sh")

CONFIG = """
bind = "127.0.0.1:0"
workers = 4
preload_app = {preload}
graceful_timeout = 30
logconfig_dict = {{
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{
        "ring": {{"class": "ringlog.Handler", "ring": {ring!r}, "policy": "block"}},
    }},
    "root": {{"level": "WARNING", "handlers": ["ring"]}},
    "loggers": {{
        "app": {{"handlers": ["ring"], "level": "INFO", "propagate": False}},
        "gunicorn.error": {{"handlers": ["ring"], "level": "INFO", "propagate": False}},
        "gunicorn.access": {{"handlers": ["ring"], "level": "INFO", "propagate": False}},
    }},
}}
"""


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_gunicorn_four_workers_every_request_logged_exactly_once(ring, start_drain, tmp_path, preload):
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(CONFIG.format(ring=ring, preload=preload))
    drain = start_drain(ring)
    stderr_path = tmp_path / "gunicorn.stderr"
    with open(stderr_path, "wb") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(config), "--chdir", os.path.dirname(__file__),
             "gunicorn_app:app"],
            stderr=stderr,
        )
    try:
        port = None

        def listening():
            # gunicorn's own log goes through the ring too: read its port from the drained file.
            nonlocal port
            assert server.poll() is None, stderr_path.read_text()
            for r in drain.records():
                found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", r["msg"])
                if found and r["target"] == "gunicorn.error":
                    port = int(found.group(1))
            return port

        wait_for(listening, "gunicorn to listen (its log line in the drained file)")
        clients, per_client = 4, 100
        served = serve_requests(lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=60), clients, per_client)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0, stderr_path.read_text()
    drain.stop()

    records = [r for r in drain.records() if r["target"] == "app.requests"]
    logged = requests_logged(drain.records())
    assert logged == served, "every request logged exactly once, by the worker that served it"
    assert len(logged) == clients * per_client
    assert server.pid not in set(served.values()), "served by the workers, not the master"
    access = [re.search(r'"GET /\?id=(\S+) HTTP', r["msg"]).group(1)
              for r in drain.records() if r["target"] == "gunicorn.access"]
    assert sorted(access) == sorted(served), "gunicorn's access log: each request exactly once"
    booted = [r for r in drain.records() if r["msg"].startswith("Booting worker with pid: ")]
    assert len(booted) >= 4
    for r in booted:
        assert r["pid"] == int(r["msg"].rsplit(" ", 1)[1]), "each worker logs with its own pid"
    print(f"requests served by {len(set(served.values()))} distinct workers")
