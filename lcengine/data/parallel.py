"""Map a function over items in worker processes, results in order, with bounded lookahead.

Workers are spawned (not forked: the caller may run threads). A worker that dies raises
`BrokenProcessPool` here instead of hanging the caller. Workers end when the process that made
them ends, however it ends (kill -9 included): Linux's parent-death signal, and a thread that
watches the parent for systems without one; the resource tracker then sees its last writer go
and ends too. Ctrl-C is left to the parent, which stops the pool when it is done.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1          # <linux/prctl.h>
PARENT_POLL_S = 0.5


def _run_chunk(fn, chunk):
    return [fn(item) for item in chunk]


def die_with_parent(parent: int) -> None:
    """Worker initialiser: be killed when process `parent` ends; ignore the terminal's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:      # it ended before the line above
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def ordered_map(fn, items, workers: int, chunksize: int = 1, lookahead: int | None = None):
    """Yield fn(item) for every item of the sequence `items`, in order."""
    lookahead = lookahead or 4 * workers
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    pending: deque = deque()
    try:
        for start in range(0, len(items), chunksize):
            pending.append(pool.submit(_run_chunk, fn, items[start:start + chunksize]))
            if len(pending) >= lookahead:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
