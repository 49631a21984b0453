"""Map a function over items in worker processes, results in order, with bounded lookahead.

Workers are spawned (not forked: the caller may run threads). A worker that dies raises
`BrokenProcessPool` here instead of hanging the caller. Workers end with the process that made
them, however it ends, and leave its Ctrl-C and a job-wide SIGTERM to it (worker_life.py).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor

from ..worker_life import die_with_parent, sigterm_blocked


def _run_chunk(fn, chunk):
    return [fn(item) for item in chunk]


def ordered_map(fn, items, workers: int, chunksize: int = 1, lookahead: int | None = None):
    """Yield fn(item) for every item of the sequence `items`, in order."""
    lookahead = lookahead or 4 * workers
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    pending: deque = deque()
    try:
        for start in range(0, len(items), chunksize):
            with sigterm_blocked():          # a submit may start a worker
                pending.append(pool.submit(_run_chunk, fn, items[start:start + chunksize]))
            if len(pending) >= lookahead:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
