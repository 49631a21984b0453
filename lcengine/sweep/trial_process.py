"""The process of one sweep trial: `lcengine train ARGS...`, run as

    python -m lcengine.sweep.trial_process WORKER_PID train ARGS...

On Linux it asks the kernel for a SIGINT when its worker dies, however the worker dies (kill -9
included): training then checkpoints where it stands and stops, as on Ctrl-C, and a later worker
resumes the trial. Without this, a killed worker's trial would go on training unwatched while
the study waits for it.
"""

import os
import signal
import sys

from lcengine.worker_life import signal_at_parent_death


def main() -> None:
    worker = int(sys.argv[1])
    signal_at_parent_death(signal.SIGINT)
    if os.getppid() != worker:            # the worker died before the request was made
        sys.exit(130)
    from lcengine.cli import main as lcengine
    lcengine(args=sys.argv[2:], prog_name="lcengine")


if __name__ == "__main__":
    main()
