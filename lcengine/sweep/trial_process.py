"""The process of one sweep trial: `lcengine train ARGS...`, run as

    python -m lcengine.sweep.trial_process WORKER_PID EPOCH_FD VERDICT_FD train ARGS...

On Linux it asks the kernel for a SIGINT when its worker dies, however the worker dies (kill -9
included): training then checkpoints where it stands and stops, as on Ctrl-C, and a later worker
resumes the trial. Without this, a killed worker's trial would go on training unwatched while
the study waits for it.

After each epoch is saved, the trial writes one byte to the pipe EPOCH_FD and waits for the
worker's verdict on VERDICT_FD: one byte, `s` to stop (the pruner's call) or anything else to go
on. So the pruner sees every epoch before the next one starts, and a sweep prunes the
same trials however fast the epochs or however busy the machine. A closed verdict pipe (the
worker is gone, or stopping the sweep) means go on: the worker's SIGINT stops the run.
"""

import os
import signal
import sys

from lcengine.worker_life import signal_at_parent_death

#: what the trial writes at each end of epoch
EPOCH_ENDED = b"e"
#: the verdict byte that stops the trial
STOP = b"s"
#: the verdict byte that lets it go on
GO_ON = b"g"


def main() -> None:
    worker, epoch_fd, verdict_fd = (int(a) for a in sys.argv[1:4])
    signal_at_parent_death(signal.SIGINT)
    if os.getppid() != worker:            # the worker died before the request was made
        sys.exit(130)

    def after_epoch(record: dict) -> bool:
        try:
            os.write(epoch_fd, EPOCH_ENDED)
        except BrokenPipeError:
            return False
        return os.read(verdict_fd, 1) == STOP

    from lcengine.cli import main as lcengine
    lcengine(args=sys.argv[4:], prog_name="lcengine", obj={"after_epoch": after_epoch})


if __name__ == "__main__":
    main()
