"""What a worker process does first: end with its parent, leave the parent's signals to it.

A worker must end when the process that made it ends, however it ends (kill -9 included):
Linux's parent-death signal, and a thread that watches the parent for systems without one; the
multiprocessing resource tracker then sees its last writer go and ends too. Ctrl-C, and a SIGTERM
that did not come from the parent (a scheduler's time limit signals every process of the job),
are left to the parent: it checkpoints, then stops its workers.

This module imports nothing heavy, so a worker spawned from `python -c` or an importable main
module runs `die_with_parent` (its pool's initialiser) within a fraction of a second, before the
task's modules are imported. Under a script such as the `lcengine` entry point, the worker first
imports that script's modules (a second or two); a worker whose parent died meanwhile ends as
soon as it gets here.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1          # <linux/prctl.h>
PARENT_POLL_S = 0.5


def die_with_parent(parent: int) -> None:
    """Worker initialiser: be killed when process `parent` ends; leave the terminal's Ctrl-C and
    others' SIGTERM to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "sigwaitinfo"):        # blocked since start: sigterm_blocked
        threading.Thread(target=_obey_parent_sigterm, args=(parent,), daemon=True).start()
    elif hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    signal_at_parent_death(signal.SIGKILL)
    if os.getppid() != parent:      # it ended before the line above
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def signal_at_parent_death(signum: int) -> None:
    """Have Linux send this process `signum` when its parent ends, however it ends (the
    parent-death signal; nothing elsewhere). The caller checks its parent afterwards: one that
    ended before the request sends nothing."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _obey_parent_sigterm(parent: int) -> None:
    """The pool stops a worker with SIGTERM from the parent: end then, ignore anyone else's."""
    while True:
        if signal.sigwaitinfo({signal.SIGTERM}).si_pid == parent:
            os._exit(128 + signal.SIGTERM)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


@contextmanager
def sigterm_blocked():
    """SIGTERM held back in this thread while it may start workers (the pool starts them on
    demand, in `submit`): a signal mask survives exec, so they begin with it blocked, and a
    SIGTERM sent to the whole job while they import cannot kill them before `die_with_parent`
    has set up their handling of it."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
