"""A sweep worker: claims trials of the study, trains each as an `lcengine train` process, tells
the study how it ended. Any number of workers, on one host or on several sharing ROOT, can run
one sweep; none coordinates the others.

Trial k is the run directory ROOT/trial-k (the ordinary output of `lcengine train`), with its
log ROOT/trial-k.log and its lock ROOT/trial-k.lock. A worker takes a trial's lock (flock, which
the kernel drops when every process holding it has died) before it claims the trial in the
study, and holds it, together with the trial's training process, until it has told the study the
result. So a trial that the study calls running while its lock is free has lost its worker: the
next worker to see it adopts it and resumes its run directory (`lcengine train --resume`), and a
finished trial is never run again. Optuna's own remedy, heartbeats, exists only for database
storages and marks the trial failed, losing its epochs; the lock works with every storage and
frees the trial the moment its worker dies. Workers on several hosts therefore need a ROOT whose
flock works across hosts: NFS does (Linux maps flock onto NFS byte-range locks), Lustre when
mounted with -o flock.

The training process is a child of the worker, out of the terminal's process group: a Ctrl-C
or SIGTERM reaches the worker, which passes one SIGINT to each child (it checkpoints where it
stands and stops) and leaves the trials to be resumed; if the worker is killed outright, the
kernel sends the child the same SIGINT (trial_process.py). A trial is a subprocess rather than a
call because a crash, an out-of-memory kill or a diverging run then ends only that trial, and
because `--jobs` needs processes: the training loop holds the GIL.

Each epoch's test error is reported to Optuna as the trial's intermediate value at that epoch.
The trial waits at the end of each epoch until its worker has reported it and asked the pruner
(trial_process.py), so pruning depends only on the values, never on timing; a pruned trial
checkpoints and stops there and is told pruned (its run directory stays, resumable by hand).
A trial's value is its best test error over its epochs, as the paper reports it.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..checkpoint import CheckpointError, latest
from ..distributed import LAUNCHER_SIZE_VARS
from ..report import ReportError, read_metrics
from ..train import CONFIG, METRICS
from .study import Sweep, worker_name
from .trial_process import GO_ON, STOP

#: the longest wait between looks at the running trials and at the study (a trial's end of epoch
#: wakes the worker at once)
POLL_SECONDS = 0.5
#: a training process's exit status after a Ctrl-C (checkpointed, resumable)
INTERRUPTED = 130


class SweepInterrupted(RuntimeError):
    """Ctrl-C or SIGTERM: the running trials were checkpointed and will be resumed."""


def trial_name(number: int) -> str:
    return f"trial-{number:04d}"


def history(run_dir: Path) -> list[dict]:
    """The run's epoch records so far (none before its first epoch)."""
    try:
        return read_metrics(run_dir / METRICS)
    except ReportError:
        return []


def summary(records: list[dict]) -> dict:
    """What the study keeps of a run's records, for the report."""
    if not records:
        return {"epochs": 0}
    best = min(records, key=lambda r: r["test_error"])
    return {"epochs": len(records), "best_test_error": best["test_error"],
            "best_epoch": best["epoch"], "final_test_error": records[-1]["test_error"],
            "final_train_error": records[-1]["train_error"],
            "seconds": round(sum(r["seconds"] for r in records), 3)}


def option_args(values: dict) -> list[str]:
    """{field: value} as `lcengine train` options; floats exactly (repr round-trips)."""
    args = []
    for name, value in values.items():
        args += ["--" + name.replace("_", "-"), repr(value) if isinstance(value, float)
                 else str(value)]
    return args


def suggest(trial, dimension):
    """The trial's value of a dimension: its enqueued draw, recorded as an Optuna parameter."""
    if dimension.kind == "choice":
        return trial.suggest_categorical(dimension.name, list(dimension.values))
    return trial.suggest_float(dimension.name, *dimension.values,
                               log=dimension.kind == "log_uniform")


@dataclass
class TrialRun:
    number: int
    trial: object                  # optuna.Trial
    run_dir: Path
    lock: IO
    log: IO
    process: subprocess.Popen
    epochs_ended: int | None       # the pipe on which the trial says an epoch ended
    verdicts: int | None           # the pipe on which it waits for the verdict
    reported: set = field(default_factory=set)
    pruned: bool = False

    def waiting(self) -> int:
        """How many ends of epoch the trial has announced since the last look (without
        blocking); at the trial's exit the pipe is closed here."""
        if self.epochs_ended is None:
            return 0
        try:
            said = os.read(self.epochs_ended, 4096)
        except BlockingIOError:
            return 0
        if not said:
            os.close(self.epochs_ended)
            self.epochs_ended = None
        return len(said)                 # a byte per end of epoch

    def answer(self, count: int) -> None:
        for _ in range(count if self.verdicts is not None else 0):
            try:
                os.write(self.verdicts, STOP if self.pruned else GO_ON)
            except BrokenPipeError:
                return

    def close_pipes(self) -> None:
        """A trial waiting for a verdict reads the end of the pipe as: go on."""
        for fd in (self.epochs_ended, self.verdicts):
            if fd is not None:
                os.close(fd)
        self.epochs_ended = self.verdicts = None


class Worker:
    def __init__(self, sweep: Sweep, jobs: int = 1, echo=print):
        self.sweep, self.jobs, self.echo = sweep, jobs, echo
        self.running: dict[int, TrialRun] = {}
        self.stopping = False
        self.finished = 0

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> int:
        """Run trials until none is left to run or wait for; the number this worker finished."""
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                while len(self.running) < self.jobs and self.claim():
                    pass
                if not self.running and not self.unfinished():
                    return self.finished
                select.select([r.epochs_ended for r in self.running.values()
                               if r.epochs_ended is not None], [], [], POLL_SECONDS)
                for run in list(self.running.values()):
                    self.follow(run)
                    if run.process.poll() is not None:
                        self.finish(run)
        except KeyboardInterrupt:
            self.stop()
            raise SweepInterrupted(f"interrupted; the running trials were checkpointed; run "
                                   f"`lcengine sweep --root {self.sweep.root}` to go on") from None
        finally:
            signal.signal(signal.SIGTERM, previous)

    def stop(self) -> None:
        """One SIGINT to each training process (each checkpoints and stops), then wait."""
        self.stopping = True
        for run in self.running.values():
            run.process.send_signal(signal.SIGINT)
            run.close_pipes()
        for run in list(self.running.values()):
            run.process.wait()
            self.finish(run)

    def unfinished(self) -> bool:
        """Whether trials are waiting or running elsewhere (a worker that dies leaves them to
        us, so we wait for them)."""
        from optuna.trial import TrialState
        return bool(self.sweep.study.get_trials(
            deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)))

    # --- claiming --------------------------------------------------------------------------
    def claim(self) -> bool:
        """Start the first trial that is waiting, or running with its lock free (its worker
        died). False if there is none."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState
        storage = self.sweep.storage
        for frozen in self.sweep.study.get_trials(
                deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)):
            if frozen.number in self.running:
                continue
            lock = self._try_lock(frozen.number)
            if lock is None:
                continue
            trial_id = self.sweep.trial_id(frozen.number)
            state = storage.get_trial(trial_id).state
            try:
                claimed = state == TrialState.RUNNING or (
                    state == TrialState.WAITING
                    and storage.set_trial_state_values(trial_id, TrialState.RUNNING))
            except UpdateFinishedTrialError:
                claimed = False
            if not claimed:
                lock.close()
                continue
            self.start(frozen.number, trial_id, lock, adopted=state == TrialState.RUNNING)
            return True
        return False

    def _try_lock(self, number: int) -> IO | None:
        handle = open(self.sweep.root / f"{trial_name(number)}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    # --- one trial -------------------------------------------------------------------------
    def start(self, number: int, trial_id: int, lock: IO, adopted: bool) -> None:
        import optuna
        sweep = self.sweep
        trial = optuna.Trial(sweep.study, trial_id)
        params = {d.name: suggest(trial, d) for d in sweep.definition.space.dimensions}
        run_dir = sweep.root / trial_name(number)
        if adopted and has_checkpoint(run_dir):
            args, how = ["--resume", str(run_dir)], "resuming"
        else:
            if run_dir.exists():              # killed before its first checkpoint: keep aside
                run_dir.rename(run_dir.with_name(f"{run_dir.name}.unstarted-{time.time():.0f}"))
            values = {**sweep.definition.fixed, **params, "out": str(run_dir)}
            args, how = option_args(values), "starting"
        frozen = sweep.storage.get_trial(trial_id)
        trial.set_user_attr("run_dir", run_dir.name)
        trial.set_user_attr("workers", frozen.user_attrs.get("workers", []) + [worker_name()])
        log = open(sweep.root / f"{trial_name(number)}.log", "a")
        epochs_ended, trial_says = os.pipe()
        trial_hears, verdicts = os.pipe()
        command = [sys.executable, "-m", "lcengine.sweep.trial_process", str(os.getpid()),
                   str(trial_says), str(trial_hears), "train", *args]
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(lock.fileno(), trial_says, trial_hears), start_new_session=True,
                env=trial_environment())
        except BaseException:
            os.close(epochs_ended)
            os.close(verdicts)
            raise
        finally:
            os.close(trial_says)
            os.close(trial_hears)
        os.set_blocking(epochs_ended, False)
        self.running[number] = TrialRun(number, trial, run_dir, lock, log, process,
                                        epochs_ended, verdicts,
                                        reported=set(frozen.intermediate_values))
        shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in params.items())
        self.echo(f"trial {number}: {how} {run_dir} ({shown})")

    def follow(self, run: TrialRun) -> None:
        """Report new epochs to the pruner, then answer the trial's waiting ends of epoch: stop
        if the pruner said so."""
        waiting = run.waiting()           # read first: each announced epoch is in the metrics
        for record in history(run.run_dir):
            if record["epoch"] in run.reported:
                continue
            run.trial.report(record["test_error"], record["epoch"])
            run.reported.add(record["epoch"])
            if not run.pruned and not self.stopping and run.trial.should_prune():
                run.pruned = True
                self.echo(f"trial {run.number}: pruned after epoch {record['epoch']} "
                          f"(test error {record['test_error']:.2f}%)")
        run.answer(waiting)

    def finish(self, run: TrialRun) -> None:
        """Tell the study how the trial ended (or leave it running, to be resumed)."""
        from optuna.trial import TrialState
        del self.running[run.number]
        self.follow(run)
        code = run.process.returncode
        records = history(run.run_dir)
        result = summary(records)
        for key, value in result.items():
            run.trial.set_user_attr(key, value)
        if (run.run_dir / CONFIG).is_file():
            run.trial.set_user_attr("config", (run.run_dir / CONFIG).read_text())
        study, told = self.sweep.study, True
        if run.pruned:
            study.tell(run.number, state=TrialState.PRUNED)
            outcome = "pruned"
        elif code == 0:
            study.tell(run.number, result["best_test_error"])
            outcome = "done"
        elif code in (INTERRUPTED, -signal.SIGINT) or self.stopping:
            # (stopping: a SIGINT that lands before training starts ends `lcengine train` as
            # click's "Aborted!", exit status 1)
            outcome, told = "interrupted, checkpointed; it resumes in the next worker", False
        else:
            failure = _last_line(self.sweep.root / f"{trial_name(run.number)}.log") \
                if code > 0 else f"killed by signal {-code}"
            run.trial.set_user_attr("failure", failure)
            study.tell(run.number, state=TrialState.FAIL)
            outcome = f"failed: {failure}"
        run.close_pipes()
        run.log.close()
        run.lock.close()
        self.finished += told
        best = (f"best test {result['best_test_error']:.2f}% (epoch {result['best_epoch']}), "
                if records else "")
        self.echo(f"trial {run.number}: {best}{outcome}")


def trial_environment() -> dict:
    """The worker's environment less the MPI launcher's process count: under `mpiexec -n K
    lcengine sweep` the K workers share the trials, and each trial trains as one process (with
    the count, `lcengine train` would take itself for one of K data-parallel processes)."""
    return {k: v for k, v in os.environ.items() if k not in LAUNCHER_SIZE_VARS}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def has_checkpoint(run_dir: Path) -> bool:
    try:
        latest(run_dir)
    except CheckpointError:
        return False
    return True


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"
