"""Functions the multiprocessing tests run in child processes (importable by spawn and
forkserver children, which unpickle the Handler or Writer they are given)."""

import logging
import os


def log_through_handler(handler, tag, count):
    logger = logging.getLogger(f"mp.{tag}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    for seq in range(count):
        logger.info("%s %d", tag, seq)
    return os.getpid()


def write_through_writer(writer, tag, count):
    for seq in range(count):
        assert writer.write(f"{tag} {seq}")
    return os.getpid()
