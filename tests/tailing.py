"""A writer and crashing tailers racing on one events file: what the exactly-once tests of every sink share."""

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def race(path: Path, lines: list[bytes], make_tailer: Callable[[], Any], *, seed: int) -> None:
    """Write `lines` split at random bytes (flushed in between, as a process killed mid-write leaves them)
    while two tailers poll, each crashing (losing its memory, resyncing from the database) at random."""
    path.write_bytes(b"")
    rng = random.Random(seed)
    done = threading.Event()

    def writer() -> None:
        with open(path, "ab", buffering=0) as fh:
            pending = b""
            for i, line in enumerate(lines):
                pending += line
                cut = rng.randint(0, len(pending))
                fh.write(pending[:cut])
                pending = pending[cut:]
                if i % 10 == 0:
                    time.sleep(0.002)  # let the tailers interleave with the writes
            fh.write(pending)
        done.set()

    def tail(tailer_seed: int) -> None:
        local = random.Random(tailer_seed)
        t = make_tailer()
        while True:
            finished = done.is_set()
            t.poll()
            if local.random() < 0.1:
                t = make_tailer()  # a crash
            if finished:
                while t.poll():
                    pass
                return

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=tail, args=(s,)) for s in (1, 2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
