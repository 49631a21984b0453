"""The training loop, top to bottom.

    Run(config)   backend → data → network → rule → optimisers, built the same way every time
    per epoch     each phase of the schedule — BP/FA/DFA: "forward"; parallel TP: "both";
                  alternating TP: a whole "inverse" pass over the training set, then a whole
                  "forward" pass (the paper leaves the count open, docs paper.md §6.1; ours:
                  one epoch = one inverse pass + one forward pass) — over minibatches:
                  rule.gradients → optimiser steps (`train_step`) → the losses read back and
                  checked every SYNC_EVERY steps (`Pending`); then train and test error,
                  the angles to BP's gradient on one fixed minibatch and those of the
                  feedback arrays B_l to W_l (FA, sign-symmetry, KP); then the record →
                  checkpoint → metrics.jsonl → one printed line.

Under `mpiexec -n K` the same loop runs on K data-parallel processes (`lcengine.distributed`):
each takes its rows of every minibatch, the gradients are summed before any update, the
evaluation's counts are summed, and only rank 0 writes the run directory and prints.

Resuming is bit for bit: the loader's order and augmentation are pure functions of (seed, epoch,
batch), and the checkpoint holds every parameter, optimiser moment, fixed random array, RNG
state and the position (epoch, phase, batch). Ctrl-C or SIGTERM is noticed between minibatches:
the run checkpoints where it stands and stops. A NaN or exploding loss stops the run before
anything is saved, so the last good checkpoint stays the newest. One process at a time writes a
run directory (`storage.hold`, for as long as `start` or `resume` runs).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import closing, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numba
from tqdm import tqdm

from . import checkpoint, distributed, storage
from .backend import get_backend
from .config import TP_FAMILY, ConfigError, TrainConfig
from .data import DataError, Loader, open_shards
from .metrics import alignment, feedback_angles, top_k_error
from .nets import build_network
from .optim import Adam
from .rules import make_rule
from .rules.base import Step

METRICS = "metrics.jsonl"
CONFIG = "config.toml"
#: steps between reads of the losses from the device (one wait for the GPU per this many steps)
SYNC_EVERY = 50


class Diverged(RuntimeError):
    """The loss became NaN or exploded; the message says where and which checkpoint is kept."""


class Interrupted(RuntimeError):
    """Ctrl-C or SIGTERM: the run was checkpointed where it stood; the message says how to
    resume; `exit_code` is the shell's for that signal (130, 143)."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = 128 + signum


@dataclass
class Position:
    """Where a run stands: `epoch` epochs done, then `batch` minibatches of phase `phase`."""
    epoch: int = 0
    phase: int = 0
    batch: int = 0

    def tag(self) -> str:
        return f"e{self.epoch:05d}-p{self.phase}-b{self.batch:07d}"


def new_tally() -> dict:
    """The running sums of the epoch in progress (checkpointed with it)."""
    return {"loss": 0.0, "steps": 0, "images": 0, "seconds": 0.0, "info": {}}


class Run:
    """Everything a run is made of, built from its config; the same config gives the same Run."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.group = distributed.world()
        if config.device == "gpu":
            self.group.use_local_gpu()
        self.backend = get_backend(config.device, config.kernels)
        source = config.data or config.dataset
        self.train_set = open_shards(source, "train")
        self.test_set = open_shards(source, config.eval_split)
        expected = "mnist" if config.dataset == "mnist-mini" else config.dataset
        if self.train_set.dataset != expected:
            raise DataError(f"{source}: holds {self.train_set.dataset!r} shards, but --dataset is "
                            f"{config.dataset}")
        for shards in (self.train_set, self.test_set):
            if shards.count == 0:
                raise DataError(f"{shards.directory}: split {shards.split} holds no images (all "
                                "were skipped at prep; see its manifest); prepare it again")
        self.rng = self.backend.rng(config.seed)
        self.net = build_network(config.net, self.backend, self.rng, width=config.width,
                                 input_shape=self.train_set.image_shape,
                                 n_classes=self.train_set.n_classes)
        # on K processes the rule draws its noise for the whole minibatch and keeps its rows
        self.rule_rng = self.rng if self.group.size == 1 else \
            distributed.PartRng(self.rng, self.backend.xp)
        self.rule = make_rule(config.algo, self.net, config.rule_hp(), self.rule_rng)
        self.bp = None if config.algo == "bp" else make_rule("bp", self.net, {}, self.rng)
        self.optimisers = {"forward": Adam(self.rule.forward_params(), config.lr, config.beta1,
                                           config.beta2, config.eps, backend=self.backend)}
        if config.algo in TP_FAMILY:
            self.optimisers["inverse"] = Adam(self.rule.inverse_params(), config.inv_lr,
                                              config.inv_beta1, config.inv_beta2, config.inv_eps,
                                              backend=self.backend)
        common = dict(batch_size=config.batch_size, seed=config.seed, backend=self.backend,
                      workers=config.workers)
        part = dict(part=(self.group.rank, self.group.size))
        self.train_loader = Loader(self.train_set, train=True, **common, **part)
        self.train_eval_loader = Loader(self.train_set, train=False, shuffle=False, **common,
                                        **part)
        self.test_loader = Loader(self.test_set, train=False, shuffle=False, **common, **part)
        # the angles to BP are measured on rank 0, on the whole first minibatch of epoch 0's
        # shuffled order, unaugmented: stored order can be one class (CIFAR-10 and ImageNet
        # shards are written class by class)
        self.align_loader = Loader(self.train_set, train=False, **common)
        self.reducer = self.group.reducer(self.backend)
        self.chance_loss = math.log(self.train_set.n_classes)
        self._check_split()

    def _check_split(self) -> None:
        """Every process must hold at least one row of every training minibatch."""
        size, batch = self.group.size, self.config.batch_size
        if size == 1:
            return
        if batch < size:
            raise distributed.DistributedError(
                f"--batch-size {batch} is the whole minibatch, shared by {size} processes: give "
                f"at least {size}")
        last = min(self.train_set.count, self.phase_batches() * batch) % batch
        if 0 < last < size:
            raise distributed.DistributedError(
                f"the last minibatch of an epoch holds {last} images, fewer than the {size} "
                f"processes: choose a --batch-size or --limit-train that leaves none so small")

    # --- what a checkpoint holds ---------------------------------------------------------
    def state(self) -> dict:
        return {"forward": self.rule.forward_params(), "inverse": self.rule.inverse_params(),
                "rule": self.rule.state(),
                "optimisers": {k: opt.state() for k, opt in self.optimisers.items()},
                "rng": self.rng.state}

    def load_state(self, state: dict) -> None:
        for part in ("forward", "inverse"):
            mine = getattr(self.rule, f"{part}_params")()
            if set(mine) != set(state[part]):
                raise checkpoint.CheckpointError(
                    f"checkpoint {part} parameters {sorted(state[part])} do not match this "
                    f"run's {sorted(mine)}")
            for key, array in mine.items():
                if tuple(array.shape) != tuple(state[part][key].shape):
                    raise checkpoint.CheckpointError(
                        f"checkpoint parameter {key} has shape {state[part][key].shape}, this "
                        f"run's {tuple(array.shape)}: the data's image shape or classes differ")
                array[...] = self.backend.asarray(state[part][key])
        self.rule.load_state(state["rule"])
        for key, opt in self.optimisers.items():
            opt.load_state(state["optimisers"][key])
        self.rng.state = state["rng"]

    # --- passes ----------------------------------------------------------------------------
    def phase_batches(self) -> int:
        """Minibatches in one pass over the (limited) training set."""
        limit = self.config.limit_train
        full = len(self.train_loader)
        return full if limit is None else min(full, math.ceil(limit / self.config.batch_size))

    def step(self, x, labels, phase: str, n: int | None = None, asked_to_stop=lambda: False):
        """One minibatch of n images, of which this process holds the rows x. Afterwards
        `self.stopping` says whether `asked_to_stop()` held, read at the step's end, on any
        process (all agree, so all stop after the same minibatch)."""
        if self.reducer is None:
            result = train_step(self.rule, self.optimisers, x, labels, phase)
            self.stopping = asked_to_stop()
            return result
        lo, hi = self.group.rows(n)
        self.rule_rng.rows = (lo, hi, n)
        result, self.stopping = data_parallel_step(self.rule, self.optimisers, self.reducer, x,
                                                   labels, phase, (hi - lo) / n, asked_to_stop)
        return result

    def check(self, values: dict, where: str) -> None:
        """Raise Diverged if a step's loss (or a local loss) is NaN or the loss exploded."""
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise Diverged(f"{where}: " + ", ".join(f"{k} is {v}" for k, v in bad.items()))
        if values["loss"] > self.config.explode_factor * self.chance_loss:
            raise Diverged(f"{where}: loss {values['loss']:.4g} exploded (over "
                           f"{self.config.explode_factor:g} × chance level {self.chance_loss:.3g})")

    def evaluate(self, loader: Loader, limit: int | None) -> dict:
        """Top-1 (and top-5) error in % and mean loss over the first `limit` images (None: all)."""
        count = loader.shards.count if limit is None else min(limit, loader.shards.count)
        n = wrong1 = wrong5 = 0
        loss = 0.0
        size = loader.batch_size
        for b, (x, labels) in enumerate(take(loader, 0, 0, math.ceil(count / size))):
            lo, hi = self.group.rows(loader.batch_rows(b))
            k = max(0, min(hi - lo, count - (b * size + lo)))   # this process's rows to count
            if k == 0:
                continue
            x, labels = x[:k], labels[:k]
            logits = self.net.predict(x)
            loss += float(self.net.loss(logits, labels)[0]) * k
            wrong1 += top_k_error(logits, labels, 1) * k
            wrong5 += top_k_error(logits, labels, 5) * k
            n += k
        n, wrong1, wrong5, loss = self.group.sum([n, wrong1, wrong5, loss])
        return {"error": 100.0 * wrong1 / n, "top5_error": 100.0 * wrong5 / n, "loss": loss / n}

    def alignment(self, x, labels) -> dict:
        """Degrees between each layer's W-update and BP's gradient; the RNG is left untouched,
        so measuring does not change training."""
        if self.bp is None or not self.group.root:
            return {}
        saved = self.rng.state
        if self.group.size > 1:
            self.rule_rng.rows = None                   # the whole minibatch is here
        angles = alignment(self.rule, self.bp, x, labels)
        self.rng.state = saved
        return {k: round(v, 3) for k, v in angles.items()}

    def feedback_alignment(self) -> dict:
        """Degrees between each feedback array B_l and W_l ({} for rules without one); the RNG
        is left untouched (brSF draws its B_l here)."""
        saved = self.rng.state
        angles = feedback_angles(self.rule)
        self.rng.state = saved
        return {k: round(v, 3) for k, v in angles.items()}


def train_step(rule, optimisers: dict, x, labels, phase: str):
    """One minibatch: the rule's gradients, then the inverse optimiser step, the rule's weight
    decay (KP) and the forward optimiser step. The LC layers' weight gradients are left to the
    optimisers, which compute them inside their updates (`DeferredGradient`: each location's
    gradient goes from the cache straight into Adam). Nothing is read back from the device (see
    Pending); `lcengine bench train` times this function."""
    with rule.deferring_weight_gradients():
        result = rule.gradients(x, labels, phase)
    if result.inverse:
        optimisers["inverse"].step(result.inverse)
    if result.forward:
        rule.apply_weight_decay()
        optimisers["forward"].step(result.forward)
    return result


def data_parallel_step(rule, optimisers: dict, reducer, x, labels, phase: str, weight: float,
                       asked_to_stop):
    """`train_step` on one of K processes holding `weight` of the minibatch's rows: each layer's
    gradients go to the reducer as the rule computes them, the sums come back, then the same
    optimiser steps run everywhere. The LC layers' weight gradients are computed, not deferred
    (they must be summed before Adam applies them). The step's losses and `stop` are summed with
    them: (Step of the whole minibatch, whether `asked_to_stop()` held on any process)."""
    reducer.begin(weight)
    with rule.publishing_gradients(reducer.add):
        result = rule.gradients(x, labels, phase)
    names = list(result.info)
    forward, inverse, sums = reducer.finish(result.forward, result.inverse,
                                            [result.loss, *result.info.values(),
                                             float(asked_to_stop())])
    if inverse:
        optimisers["inverse"].step(inverse)
    if forward:
        rule.apply_weight_decay()
        optimisers["forward"].step(forward)
    loss, *info, stops = sums
    return Step(loss, forward, inverse, dict(zip(names, info))), stops > 0


class Pending:
    """Steps whose scalars (loss, local losses) may still be on the device. Reading one makes the
    host wait for the GPU, so they are read SYNC_EVERY steps at a time, at the end of each pass
    and before a checkpoint: one copy, then each step in order is checked (a NaN names its own
    batch) and counted, exactly as if it had been read at once."""

    def __init__(self, run: "Run", tally: dict):
        self.run, self.tally, self.steps = run, tally, []

    def add(self, result, n_images: int, phase: str, where: str) -> bool:
        """Queue a step; True when it is time to `flush`."""
        self.steps.append((where, phase, n_images, ["loss", *result.info],
                           [result.loss, *result.info.values()]))
        return len(self.steps) >= SYNC_EVERY

    def flush(self) -> float | None:
        """Read, check and count the queued steps; the last step's loss (None if none)."""
        flat = self.run.backend.to_floats([v for *_, values in self.steps for v in values])
        loss = None
        for where, phase, n_images, names, values in self.steps:
            values, flat = dict(zip(names, flat)), flat[len(names):]
            self.run.check(values, where)
            loss = values.pop("loss")
            _count(self.tally, loss, values, n_images, phase)
        self.steps = []
        return loss


def take(loader: Loader, epoch: int, start: int, stop: int):
    """Batches start..stop-1 of the loader's `epoch`, closing its prefetch thread when done."""
    with closing(loader.epoch(epoch, start_batch=start)) as batches:
        for _, batch in zip(range(start, stop), batches):
            yield batch


class InterruptFlag:
    """The first Ctrl-C, or SIGTERM (what a scheduler such as Slurm sends at the time limit),
    asks the loop to checkpoint and stop after the current minibatch (a half-applied update must
    never be saved); a second one stops at once."""

    SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)"}

    def __enter__(self):
        self.requested = 0              # or the signal's number
        self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def asked(self) -> bool:
        return bool(self.requested)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = signum

    def stop(self, where: str) -> Interrupted:
        """The exception to stop with (a process stopped by another's signal says Ctrl-C's)."""
        signum = self.requested or signal.SIGINT
        return Interrupted(f"{self.SIGNALS[signum]} {where}", signum)

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


@contextmanager
def cpu_threads(n: int):
    """BLAS and Numba parallel regions limited to `n` threads while the block runs."""
    # imported here: threadpoolctl sets KMP_DUPLICATE_LIB_OK in os.environ when it is imported,
    # and importing lcengine changes no process state
    from threadpoolctl import threadpool_limits

    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(n, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)


# --- starting and resuming ------------------------------------------------------------------
def start(config: TrainConfig, run_dir: Path, echo=print, after_epoch=None) -> list[dict]:
    """Create `run_dir`, save the config and a checkpoint of the initial state, and train.
    `after_epoch(record)`, if given, is called on rank 0 once each epoch is saved and logged;
    True stops the run there (a sweep's pruner decides this way)."""
    run = Run(config)
    run_dir = Path(run_dir)
    if run.group.root:
        storage.make_directory(run_dir, "choose another --out")
    with one_writer(run_dir, "lcengine train"):
        if run.group.root:
            if (run_dir / CONFIG).exists():
                raise ConfigError(f"{run_dir}: another run started here; continue it with "
                                  f"--resume {run_dir}, or choose another --out")
            with storage.reporting(run_dir, "choose another --out"):
                checkpoint.atomic_write_text(run_dir / CONFIG, config.to_toml())
                (run_dir / METRICS).touch()
        position, history, tally = Position(), [], new_tally()
        save(run, run_dir, position, history, tally)
        return loop(run, run_dir, position, history, tally, echo, after_epoch)


def read_checkpoint(run_dir: Path, echo=print) -> dict:
    """The newest checkpoint that loads and holds a run's state; a line for each one skipped."""
    _, state, skipped = checkpoint.load_latest(run_dir, check=check_state)
    for line in skipped:
        echo(line)
    return state


def check_state(state: dict) -> None:
    missing = [k for k in ("config", "position", "history", "tally", "run") if k not in state]
    if missing:
        raise checkpoint.CheckpointError(f"state.json lacks {', '.join(missing)}")
    try:
        saved_config(state)
    except TypeError as err:
        raise checkpoint.CheckpointError(f"state.json holds no run configuration ({err})")


def saved_config(state: dict) -> TrainConfig:
    return TrainConfig(**state["config"])


def resume(run_dir: Path, epochs: int | None = None, echo=print,
           data: str | None = None, after_epoch=None) -> list[dict]:
    """Continue a run from its newest complete checkpoint (optionally to a new epoch count, or
    with its shards in a new place `data`: the same dataset and image shape); `after_epoch` as
    for `start`."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise checkpoint.CheckpointError(f"{run_dir}: no such run directory")
    with one_writer(run_dir, "lcengine train --resume"):
        return _resume(run_dir, epochs, echo, data, after_epoch)


def one_writer(run_dir: Path, command: str):
    """Rank 0 holds the run directory (storage.hold); the other processes write nothing."""
    return storage.hold(run_dir, command) if distributed.world().root else nullcontext()


def _resume(run_dir: Path, epochs: int | None, echo, data: str | None,
            after_epoch) -> list[dict]:
    state = read_checkpoint(run_dir, echo)
    config = saved_config(state)
    if epochs is not None:
        config.epochs = epochs
    if data is not None:
        config.data = moved_data(config, data)
    elif config.data is not None and not Path(config.data).is_dir():
        raise DataError(f"{config.data}: the run's shards are not there any more; if they moved, "
                        f"give their new place: lcengine train --resume {run_dir} --data DIR")
    run = Run(config)
    run.load_state(state["run"])
    position = Position(**state["position"])
    history = state["history"]
    if run.group.root:
        if epochs is not None or data is not None:
            checkpoint.atomic_write_text(run_dir / CONFIG, config.to_toml())
        # metrics.jsonl may hold a line written after the checkpoint we resume from: rewrite it
        checkpoint.atomic_write_text(run_dir / METRICS,
                                     "".join(json.dumps(r) + "\n" for r in history))
    echo(f"resuming {run_dir} at epoch {position.epoch + 1}, "
         f"{config.phases[position.phase]} pass, batch {position.batch}")
    return loop(run, run_dir, position, history, state["tally"], echo, after_epoch)


def moved_data(config: TrainConfig, data: str) -> str:
    """`data` as the absolute place of a run's shards (Run checks their dataset and shape)."""
    if config.data is None:
        raise ConfigError(f"--data: {config.dataset} is embedded and takes no --data")
    if not Path(data).is_dir():
        raise ConfigError(f"--data: {data}: no such directory")
    return os.path.abspath(data)


def save(run: Run, run_dir: Path, position: Position, history: list, tally: dict) -> Path:
    """Checkpoint (rank 0, once every process has reached the same point with the same
    parameters); the checkpoint's path."""
    run.group.barrier()
    run.group.check_identical({**run.rule.forward_params(), **run.rule.inverse_params()},
                              run.backend.to_numpy)
    if not run.group.root:
        return checkpoint.checkpoints_dir(run_dir) / position.tag()
    state = {"config": asdict(run.config), "position": asdict(position), "history": history,
             "tally": tally, "run": run.state()}
    return checkpoint.save(run_dir, position.tag(), state, run.backend.to_numpy)


# --- the loop -----------------------------------------------------------------------------------
def loop(run: Run, run_dir: Path, position: Position, history: list, tally: dict,
         echo=print, after_epoch=None) -> list[dict]:
    config = run.config
    phases = config.phases
    n_batches = run.phase_batches()
    pass_images = min(run.train_set.count, n_batches * config.batch_size)
    align_x, align_labels = next(take(run.align_loader, 0, 0, 1))
    if not run.group.root:
        echo = _silent
    with InterruptFlag() as interrupt, cpu_threads(config.threads):
        for epoch in range(position.epoch, config.epochs):
            bar = tqdm(total=pass_images * len(phases), desc=f"epoch {epoch + 1}/{config.epochs}",
                       initial=position.phase * pass_images + position.batch * config.batch_size,
                       unit="img", unit_scale=True, leave=False, dynamic_ncols=True,
                       disable=None if run.group.root else True)
            with bar:
                for p in range(position.phase, len(phases)):
                    stream = epoch * len(phases) + p       # each pass its own shuffle
                    started = time.perf_counter()
                    pending = Pending(run, tally)
                    for b, (x, labels) in enumerate(take(run.train_loader, stream, position.batch,
                                                         n_batches), start=position.batch):
                        where = f"epoch {epoch + 1}, {phases[p]} pass, batch {b}"
                        n = run.train_loader.batch_rows(b)
                        result = run.step(x, labels, phases[p], n, interrupt.asked)
                        bar.update(n)
                        if pending.add(result, n, phases[p], where):
                            bar.set_postfix(loss=f"{pending.flush():.3f}", refresh=False)
                        if run.stopping:
                            pending.flush()
                            tally["seconds"] += time.perf_counter() - started
                            stopped = Position(epoch, p, b + 1)
                            path = save(run, run_dir, stopped, history, tally)
                            raise interrupt.stop(f"at {where}; checkpoint {path}; continue "
                                                 f"with: lcengine train --resume {run_dir}")
                    pending.flush()
                    tally["seconds"] += time.perf_counter() - started
                    position = Position(epoch, p + 1, 0)
            record = epoch_record(run, epoch, tally, history, align_x, align_labels)
            history.append(record)
            position, tally = Position(epoch + 1), new_tally()
            save(run, run_dir, position, history, tally)
            if run.group.root:
                with storage.reporting(run_dir / METRICS, f"make room, then continue with: "
                                       f"lcengine train --resume {run_dir}"), \
                        open(run_dir / METRICS, "a") as f:
                    f.write(json.dumps(record) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            echo(summary_line(record, config))
            told = bool(after_epoch and run.group.root and after_epoch(record))
            asked, told = run.group.sum([interrupt.requested, told])
            resume_with = f"continue with: lcengine train --resume {run_dir}"
            if asked:
                raise interrupt.stop(f"after epoch {epoch + 1}; {resume_with}")
            if told:
                raise Interrupted(f"stopped after epoch {epoch + 1} at its caller's request "
                                  f"(a sweep's pruner); {resume_with}")
    return history


def _silent(*args, **kwargs) -> None:
    """The echo of processes other than rank 0."""


def _count(tally: dict, loss: float, info: dict, n_images: int, phase: str) -> None:
    tally["images"] += n_images
    if phase != "inverse":                # the task loss does not move in an inverse pass
        tally["loss"] += loss
        tally["steps"] += 1
    for k, v in info.items():
        total, count = tally["info"].get(k, (0.0, 0))
        tally["info"][k] = (total + v, count + 1)


def epoch_record(run: Run, epoch: int, tally: dict, history: list, x, labels) -> dict:
    config = run.config
    train = run.evaluate(run.train_eval_loader, config.train_eval_images or None)
    test = run.evaluate(run.test_loader, config.limit_test)
    best = min([r["best_test_error"] for r in history] + [test["error"]])
    record = {
        "epoch": epoch + 1,
        "train_error": round(train["error"], 4),
        "test_error": round(test["error"], 4),
        "best_test_error": round(best, 4),
        "loss": tally["loss"] / max(tally["steps"], 1),
        "test_loss": test["loss"],
        "images_per_s": round(tally["images"] / tally["seconds"], 1) if tally["seconds"] else None,
        "seconds": round(tally["seconds"], 3),
        "alignment_deg": run.alignment(x, labels),
        "feedback_deg": run.feedback_alignment(),
        "info": {k: total / count for k, (total, count) in tally["info"].items()},
    }
    if config.dataset == "imagenet":
        record["train_top5_error"] = round(train["top5_error"], 4)
        record["test_top5_error"] = round(test["top5_error"], 4)
    return record


def summary_line(record: dict, config: TrainConfig) -> str:
    angles = "/".join(f"{a:.0f}" for a in record["alignment_deg"].values())
    parts = [f"epoch {record['epoch']}/{config.epochs}", f"loss {record['loss']:.4f}",
             f"train {record['train_error']:.2f}%", f"test {record['test_error']:.2f}%"]
    if "test_top5_error" in record:
        parts.append(f"top-5 {record['test_top5_error']:.2f}%")
    parts.append(f"best {record['best_test_error']:.2f}%")
    if record["images_per_s"]:
        parts.append(f"{record['images_per_s']:.0f} img/s")
    if angles:
        parts.append(f"angles to BP {angles}°")
    if record.get("feedback_deg"):
        parts.append("B to W " + "/".join(f"{a:.0f}" for a in record["feedback_deg"].values())
                     + "°")
    return "  ".join(parts)

