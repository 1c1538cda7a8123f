"""ringlog.Writer against a real drain: what it writes, what it raises for each bad input,
its stats, close, and pickling (the copy opens the ring lazily)."""

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile

import pytest

import ringlog
from conftest import wait_for


def test_bytes_str_bytearray_and_memoryview_each_become_one_record(ring, start_drain):
    w = ringlog.Writer(ring)
    drain = start_drain(ring)
    drain.wait_alive(w)
    class Tagged(bytes):
        """A bytes subclass: not the exact-bytes steady path, the general one."""

    sent = [b"raw bytes", "a str: h\u00e9llo \u2603", bytearray(b"a bytearray"), memoryview(b"a memoryview"),
            Tagged(b"a bytes subclass")]
    for message in sent:
        assert w.write(message) is True
    assert w.write_record(20, "app.db", "with a level and a target") is True
    assert w.write_record("warning", None, b"bytes message, no target") is True
    assert w.write_record(None, "t", "no level") is True
    drain.stop()
    records = drain.records()
    assert [r["msg"] for r in records] == [
        "raw bytes",
        "a str: h\u00e9llo \u2603",
        "a bytearray",
        "a memoryview",
        "a bytes subclass",
        "with a level and a target",
        "bytes message, no target",
        "no level",
    ]
    assert {r["pid"] for r in records} == {os.getpid()}
    assert (records[5]["level"], records[5]["target"]) == ("INFO", "app.db")
    assert records[6]["level"] == "WARN"
    assert w.stats()["written"] == 8


def test_a_str_with_lone_surrogates_is_written_escaped_not_lost(ring, start_drain):
    w = ringlog.Writer(ring)
    drain = start_drain(ring)
    assert w.write("file \udcff name") is True
    drain.stop()
    assert [r["msg"] for r in drain.records()] == ["file \\udcff name"]


@pytest.mark.parametrize(
    "levelno, name",
    [(50, "ERROR"), (40, "ERROR"), (30, "WARN"), (25, "INFO"), (20, "INFO"), (10, "DEBUG"), (5, "TRACE"), (0, "TRACE")],
)
def test_logging_level_numbers_map_to_ringlog_levels(ring, start_drain, levelno, name):
    w = ringlog.Writer(ring)
    drain = start_drain(ring)
    w.write_record(levelno, "t", "m")
    drain.stop()
    assert [r["level"] for r in drain.records()] == [name]


def expect(error, status, code, call, *fragments):
    with pytest.raises(error) as raised:
        call()
    e = raised.value
    assert isinstance(e, ringlog.RinglogError)
    assert (e.status, e.code) == (status, code)
    for fragment in fragments:
        assert fragment in str(e), str(e)
    return e


def test_every_bad_input_raises_its_exception_with_the_librarys_message(ring, tmp_path):
    e = expect(ringlog.BadNameError, 2, "RINGLOG_BAD_NAME", lambda: ringlog.Writer("a/b"), "a/b")
    assert isinstance(e, ValueError)
    expect(ringlog.BadNameError, 2, "RINGLOG_BAD_NAME", lambda: ringlog.Writer(""))
    expect(ringlog.BadArgumentError, 3, "RINGLOG_BAD_ARGUMENT",
           lambda: ringlog.Writer(ring, capacity=1000), "power of two")
    expect(ringlog.BadArgumentError, 3, "RINGLOG_BAD_ARGUMENT",
           lambda: ringlog.Writer(ring, policy="sometimes"), "sometimes")
    expect(ringlog.BadArgumentError, 3, "RINGLOG_BAD_ARGUMENT", lambda: ringlog.Writer(ring, policy=-1.0))
    expect(ringlog.BadArgumentError, 3, "RINGLOG_BAD_ARGUMENT", lambda: ringlog.Writer(ring, policy=float("nan")))
    expect(ringlog.BadArgumentError, 3, "RINGLOG_BAD_ARGUMENT", lambda: ringlog.Writer(ring, policy=True))
    e = expect(ringlog.NotFoundError, 4, "RINGLOG_NOT_FOUND",
               lambda: ringlog.Writer(ring, create=False), ring, "ringlog-drain")
    assert isinstance(e, FileNotFoundError)
    assert not os.path.exists(f"/dev/shm/ringlog-{ring}"), "a failed open created nothing"

    not_a_ring = tmp_path / "not-a-ring"
    not_a_ring.write_bytes(b"definitely not a ring segment" * 1000)
    expect(ringlog.NotARingError, 5, "RINGLOG_NOT_A_RING",
           lambda: ringlog.Writer("x", path=not_a_ring, create=False))
    assert not_a_ring.read_bytes() == b"definitely not a ring segment" * 1000, "left untouched"

    w = ringlog.Writer(ring, capacity=1 << 16)
    expect(ringlog.NotARingError, 5, "RINGLOG_NOT_A_RING",
           lambda: ringlog.Writer(ring, capacity=1 << 17), "capacity")
    e = expect(ringlog.TooLargeError, 10, "RINGLOG_TOO_LARGE",
               lambda: w.write(b"x" * (w.max_record + 1)), "max record")
    assert isinstance(e, ValueError)
    expect(ringlog.TooLargeError, 10, "RINGLOG_TOO_LARGE",
           lambda: w.write_record(20, "target", "x" * w.max_record))
    expect(ringlog.BadArgumentError, 3, "RINGLOG_BAD_ARGUMENT", lambda: w.write_record("loud", "t", "m"), "loud")
    expect(ringlog.BadArgumentError, 3, "RINGLOG_BAD_ARGUMENT", lambda: w.write_record(1.5, "t", "m"))
    with pytest.raises(TypeError, match="int"):
        w.write(42)
    with pytest.raises(TypeError, match="target"):
        w.write_record(20, b"bytes target", "m")
    with pytest.raises(TypeError):
        w.write_record(20, "t", None)
    assert w.stats() == {"written": 0, "dropped": 0, "blocked_seconds": 0.0}, "nothing was lost or half-written"
    w.close()
    e = expect(ringlog.ClosedError, 13, "RINGLOG_CLOSED", lambda: w.write(b"late"), "closed")
    assert isinstance(e, ValueError)


def test_a_ring_the_user_may_not_open_raises_permission_error():
    # Root ignores file permissions, so as root the check runs in a forked child that drops to
    # nobody (uid/gid 65534); the ring sits in a directory nobody may enter, made for it.
    directory = tempfile.mkdtemp(prefix="ringlog-perm-", dir="/dev/shm")
    try:
        os.chmod(directory, 0o711)
        path = os.path.join(directory, "ring")
        # Made by another process: this one has never mapped it (it would reuse its mapping).
        subprocess.run([sys.executable, "-c", f"import ringlog; ringlog.Writer('p', path={path!r})"], check=True)
        os.chmod(path, 0)

        def check():
            e = expect(ringlog.PermissionError, 7, "RINGLOG_PERMISSION", lambda: ringlog.Writer("p", path=path))
            assert isinstance(e, PermissionError)

        if os.geteuid() != 0:
            check()
        else:
            assert _in_child_as_nobody(check) == "ok"
    finally:
        shutil.rmtree(directory)


def _in_child_as_nobody(check) -> str:
    """Runs `check` in a forked child with root dropped; returns "ok" or the child's failure."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        outcome = b"ok"
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            check()
        except BaseException as failure:  # noqa: BLE001 - reported to the parent, which fails
            outcome = repr(failure).encode()
        os.write(write_end, outcome)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        outcome = reader.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    return outcome


def test_a_ring_from_another_layout_version_raises_version_mismatch(tmp_path):
    path = tmp_path / "ring"
    # Made by another process: this one has never mapped it (it would reuse its mapping).
    subprocess.run([sys.executable, "-c", f"import ringlog; ringlog.Writer('v', path={str(path)!r})"], check=True)
    with open(path, "r+b") as f:  # the header: magic (u64 "RINGLOG\0") then version (u32)
        assert f.read(8) == b"RINGLOG\0"
        f.write((99).to_bytes(4, "little"))
    expect(ringlog.VersionMismatchError, 6, "RINGLOG_VERSION_MISMATCH",
           lambda: ringlog.Writer("v", path=path), "99")


def test_no_room_to_create_the_ring_raises_no_space(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        e = expect(ringlog.NoSpaceError, 8, "RINGLOG_NO_SPACE",
                   lambda: ringlog.Writer("s", path=small / "ring", capacity=1 << 20), "space")
        assert isinstance(e, OSError)
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_exceptions_derive_from_the_builtins_the_status_table_names():
    assert issubclass(ringlog.BadNameError, ValueError)
    assert issubclass(ringlog.BadArgumentError, ValueError)
    assert issubclass(ringlog.NotFoundError, FileNotFoundError)
    assert issubclass(ringlog.PermissionError, PermissionError)
    assert issubclass(ringlog.NoSpaceError, OSError)
    assert issubclass(ringlog.IoError, OSError)
    assert issubclass(ringlog.TooLargeError, ValueError)
    assert issubclass(ringlog.ClosedError, ValueError)
    codes = [c.status for c in (ringlog.BadNameError, ringlog.BadArgumentError, ringlog.NotFoundError,
                                ringlog.NotARingError, ringlog.VersionMismatchError, ringlog.PermissionError,
                                ringlog.NoSpaceError, ringlog.IoError, ringlog.TooLargeError, ringlog.DroppedError,
                                ringlog.WouldDeadlockError, ringlog.ClosedError, ringlog.RinglogError)]
    assert codes == list(range(2, 15))


def test_context_manager_closes_and_close_is_idempotent(ring):
    with ringlog.Writer(ring) as w:
        assert w.write(b"inside")
        assert not w.closed
    assert w.closed
    w.close()
    with pytest.raises(ringlog.ClosedError):
        w.write_record(20, "t", "m")
    assert w.stats()["written"] == 1


def test_a_pickled_writer_opens_its_ring_only_when_first_used(ring, start_drain):
    w = ringlog.Writer(ring, capacity=1 << 16, policy=0.25, create=True)
    copy = pickle.loads(pickle.dumps(w))
    assert repr(copy) == repr(w)
    assert copy.stats() == {"written": 0, "dropped": 0, "blocked_seconds": 0.0}
    drain = start_drain(ring, capacity=1 << 16)
    assert copy.write(b"through the copy")
    assert copy.max_record == w.max_record
    drain.stop()
    assert [r["msg"] for r in drain.records()] == ["through the copy"]

    # Lazy: the copy of a create=False writer whose ring has since gone unpickles fine and
    # raises only when it is used.
    existing = ringlog.Writer(ring, create=False)
    pickled = pickle.dumps(existing)
    os.unlink(f"/dev/shm/ringlog-{ring}")
    lazy = pickle.loads(pickled)
    with pytest.raises(ringlog.NotFoundError):
        lazy.write(b"x")
    closed = ringlog.Writer(ring)
    closed.close()
    assert pickle.loads(pickle.dumps(closed)).closed


def test_writers_made_again_with_the_same_options_share_one_producer_slot_per_thread(ring, start_drain):
    # Each open would otherwise take a slot per writing thread (1024 a ring): a Handler
    # pickled into every task of a long-lived Pool worker would run out.
    w = ringlog.Writer(ring, policy="block")
    drain = start_drain(ring)
    blob = pickle.dumps(w)
    for i in range(1500):
        assert pickle.loads(blob).write(f"copy {i}")
        assert ringlog.Writer(ring, policy="block").write(f"new {i}")
    drain.stop()
    assert len(drain.records()) == 3000
    assert w.stats()["written"] == 3000, "same options: one underlying writer, one count"


def test_a_ring_removed_and_recreated_is_opened_afresh(ring, start_drain):
    old = ringlog.Writer(ring)
    assert old.write(b"into the old segment")
    os.unlink(f"/dev/shm/ringlog-{ring}")
    new = ringlog.Writer(ring)  # creates a new segment: must not reuse the old mapping
    drain = start_drain(ring)
    assert new.write(b"into the new segment")
    drain.stop()
    assert [r["msg"] for r in drain.records()] == ["into the new segment"]


# Writes through a Writer closed by close(), one only collected, and a Handler closed by
# logging's close(), each from this thread, the first also from a second thread; then lives on
# (the second thread too) until its stdin closes.
CLOSE_THEN_WAIT = """
import gc, logging, sys, threading
import ringlog

ring = sys.argv[1]
closed = ringlog.Writer(ring)
wrote, finish = threading.Event(), threading.Event()


def second():
    closed.write(b"from a second thread")
    wrote.set()
    finish.wait()


t = threading.Thread(target=second)
t.start()
closed.write(b"closed")
wrote.wait()
closed.close()
collected = ringlog.Writer(ring, policy="drop")
collected.write(b"collected")
del collected
gc.collect()
handler = ringlog.Handler(ring, policy=0.5)
log = logging.getLogger("closing")
log.addHandler(handler)
log.warning("through a handler")
log.removeHandler(handler)
handler.close()
print("closed", flush=True)
sys.stdin.read()
finish.set()
t.join()
"""


def _attached_slots(ring, pid):
    """The registry slots of `pid` that `ringlog-drain stat` shows attached (lock held)."""
    stat = subprocess.run([os.environ["RINGLOG_DRAIN"], "stat", "--ring", ring, "--json"],
                          capture_output=True, text=True, check=True)
    return [p for p in json.loads(stat.stdout)["producers"] if p["pid"] == pid and p["alive"]]


def test_a_closed_or_collected_writer_of_a_live_process_is_not_attached(ring, start_drain):
    # A stopping drain keeps its spare link while producers are attached: for a writer that is
    # gone, that kept the segment's memory in /dev/shm after everyone exited.
    drain = start_drain(ring)
    drain.wait_alive()
    proc = subprocess.Popen([sys.executable, "-c", CLOSE_THEN_WAIT, ring], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "closed\n", "the process did not get to close its writers"
        wait_for(lambda: len(drain.records()) == 4, "the four records in the log")
        assert _attached_slots(ring, proc.pid) == [], "attached while the drain runs"
        drain.stop()
        assert not os.path.exists(f"/dev/shm/.ringlog-{ring}.drain"), drain.stderr_text()
        assert _attached_slots(ring, proc.pid) == [], "attached once the drain stopped"
    finally:
        _, err = proc.communicate(input="", timeout=60)
    assert proc.returncode == 0, err
