"""Shared fixtures for the ringlog Python tests: a unique ring per test, a real ringlog-drain
process (its binary from $RINGLOG_DRAIN, built by cargo), and reading what it wrote.

These tests run against the INSTALLED package: conftest refuses a `ringlog` imported from
the source tree."""

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid

import pytest

import ringlog

DEADLINE_S = 60.0  # generous: the machine is shared; conditions are polled, never slept on


def pytest_configure(config):
    source_tree = os.path.join(os.path.dirname(os.path.dirname(__file__)), "python")
    if os.path.abspath(ringlog.__file__).startswith(os.path.abspath(source_tree)):
        raise pytest.UsageError(f"ringlog imported from the source tree ({ringlog.__file__})")
    drain = os.environ.get("RINGLOG_DRAIN")
    if not drain or not os.access(drain, os.X_OK):
        raise pytest.UsageError(
            "set RINGLOG_DRAIN to the ringlog-drain binary (cargo build --release -p "
            f"ringlog-drain; target/release/ringlog-drain); got {drain!r}"
        )


def wait_for(condition, what, timeout=DEADLINE_S):
    """Polls `condition` until true; fails the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


@pytest.fixture
def ring():
    """A ring name unique to this test; its segment is removed afterwards, and the spare link
    a drain keeps beside it when it stops while producers are still attached."""
    name = f"pyt-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    yield name
    for path in (f"/dev/shm/ringlog-{name}", f"/dev/shm/.ringlog-{name}.drain"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class Drain:
    """A real ringlog-drain process writing ring `ring` into `out` as JSON lines."""

    def __init__(self, ring, out, capacity=None, fmt="json"):
        self.ring, self.out = ring, str(out)
        args = [os.environ["RINGLOG_DRAIN"], "--ring", ring, "--out", self.out, "--format", fmt]
        if capacity is not None:
            args += ["--capacity", str(capacity)]
        self.stderr_path = self.out + ".drain-stderr"
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stderr=self.stderr)

    def wait_alive(self, writer=None):
        """Until the drain holds the ring (it handles SIGTERM from then on)."""
        writer = writer or ringlog.Writer(self.ring)
        wait_for(lambda: writer.drain_alive() or self.proc.poll() is not None, "the drain to start")
        assert self.proc.poll() is None, f"drain exited: {self.stderr_text()}"

    def stop(self):
        """SIGTERM: the drain writes everything committed, then exits 0."""
        if self.proc.poll() is None:
            self.wait_alive()
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=DEADLINE_S)
        self.stderr.close()
        assert code == 0, f"drain exited {code}: {self.stderr_text()}"

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def lines(self):
        """Every line written so far, parsed (a torn or interleaved line fails to parse)."""
        try:
            with open(self.out, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        return [json.loads(line) for line in complete.splitlines()]

    def records(self):
        """The records (not the drain's own notices)."""
        return [r for r in self.lines() if not r.get("ringlog")]

    def dropped(self):
        """The sum of the drain's "dropped N records from pid P" notices, per pid."""
        drops = {}
        for r in self.lines():
            if r.get("ringlog") and r["msg"].startswith("ringlog: dropped "):
                words = r["msg"].split()
                n, pid = int(words[2]), int(words[6])
                drops[pid] = drops.get(pid, 0) + n
        return drops

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


@pytest.fixture
def start_drain(tmp_path):
    """start_drain(ring, **options) -> Drain; every drain is stopped (or killed) afterwards."""
    drains = []

    def start(ring, name="out.jsonl", **options):
        drain = Drain(ring, tmp_path / name, **options)
        drains.append(drain)
        return drain

    yield start
    for drain in drains:
        drain.kill()


def serve_requests(connect, clients, per_client):
    """`clients` threads each send `per_client` GET /?id=... requests through `connect()` (a new
    http.client connection each); returns {request id: the pid the server answered with}."""
    served = {}
    errors = []

    def client(c):
        try:
            for i in range(per_client):
                request_id = f"c{c}-{i}"
                conn = connect()
                conn.request("GET", f"/?id={request_id}")
                response = conn.getresponse()
                assert response.status == 200
                served[request_id] = int(response.read())
                conn.close()
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return served


def requests_logged(records):
    """{request id: pid} of the drained "request ID served" records; each id at most once."""
    logged = {}
    for r in records:
        if r["target"] != "app.requests":
            continue
        request_id = re.fullmatch(r"request (\S+) served", r["msg"]).group(1)
        assert request_id not in logged, f"{request_id} logged twice"
        logged[request_id] = r["pid"]
        assert r["level"] == "INFO"
    return logged
