"""A writer blocked on a full ring releases the GIL: another Python thread runs meanwhile.

The proof is causal, not timed: the ring is full and no drain runs, so only the other
thread can unblock the writer, by starting the drain. If the blocked write held the GIL,
that thread could not run, the write would give up after its drain grace and return False."""

import threading

import ringlog
from conftest import wait_for

SMALL = 1 << 16


def test_a_write_blocked_on_a_full_ring_lets_other_threads_run(ring, start_drain):
    filler = ringlog.Writer(ring, capacity=SMALL, policy="drop")
    record = b"waited for the drain the other thread started ".ljust(200, b".")
    while filler.write(b"f" * len(record)):
        pass
    blocked = ringlog.Writer(ring, policy="block", drain_grace=60.0)
    about_to_write = threading.Event()
    drains = []

    def unblock():
        wait_for(about_to_write.is_set, "the main thread to start its write")
        drains.append(start_drain(ring, capacity=SMALL))  # runs only if the GIL is free

    helper = threading.Thread(target=unblock)
    helper.start()
    about_to_write.set()
    written = blocked.write(record)
    helper.join()
    assert written is True, "the write gave up: the other thread never ran while it blocked"
    stats = blocked.stats()
    assert (stats["written"], stats["dropped"]) == (1, 0)
    assert stats["blocked_seconds"] > 0, "the write did wait on the full ring"
    (drain,) = drains
    drain.stop()
    assert drain.records()[-1]["msg"] == record.decode()
