"""A real Celery worker (from PyPI) with a prefork pool of 4 child processes, ringlog.Handler
on its task logger: every task's record is in the drained file exactly once, written by the
pool process that ran it."""

import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import wait_for

pytest.importorskip("celery", reason="celery is installed by scripts/test-python.sh")


def test_celery_prefork_pool_every_task_logged_exactly_once(ring, start_drain, tmp_path, monkeypatch):
    state = tmp_path / "celery"
    for folder in ("queue", "results"):
        (state / folder).mkdir(parents=True)
    monkeypatch.setenv("RINGLOG_TEST_CELERY_DIR", str(state))
    monkeypatch.setenv("RINGLOG_TEST_RING", ring)
    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    drain = start_drain(ring)
    stderr_path = tmp_path / "celery.stderr"
    with open(stderr_path, "wb") as stderr:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool", "prefork",
             "--concurrency", "4", "--loglevel", "INFO", "--without-heartbeat", "--without-gossip",
             "--without-mingle"],
            cwd=os.path.dirname(__file__), stderr=stderr, stdout=subprocess.DEVNULL,
        )
    try:
        def ready():
            assert worker.poll() is None, stderr_path.read_text()
            return b"ready." in stderr_path.read_bytes()

        wait_for(ready, "the Celery worker to say it is ready")
        import celery_app

        tasks = 400
        results = {f"t{i}": celery_app.work.delay(f"t{i}") for i in range(tasks)}
        ran_in = {task_id: result.get(timeout=120) for task_id, result in results.items()}
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: finish what runs, then exit
        assert worker.wait(timeout=120) == 0, stderr_path.read_text()
    drain.stop()

    logged = {}
    for r in drain.records():
        found = re.fullmatch(r"task (\S+) ran", r["msg"])
        if r["target"] != "app.tasks" or not found:
            continue
        assert found.group(1) not in logged, f"{found.group(1)} logged twice"
        logged[found.group(1)] = r["pid"]
        assert r["level"] == "INFO"
    assert logged == ran_in, "every task logged exactly once, by the pool process that ran it"
    assert len(logged) == tasks
    assert worker.pid not in set(ran_in.values()), "run by the pool's children, not the main process"
    print(f"tasks run by {len(set(ran_in.values()))} distinct pool processes")
