"""A sweep's study: where its trials are recorded, and how a worker opens or creates it.

The study lives in an Optuna storage: by default a journal file, ROOT/sweep.journal (Optuna's
JournalFileBackend: an append-only log that processes on one host, or on several hosts sharing
the filesystem, write under a link-based lock that works on NFS); with `--storage URL`, any
storage Optuna opens from a URL, e.g. a PostgreSQL or MySQL server for many machines.

The sweep's definition (the fixed train options, the space, the number of samples, the sampler's
seed, the pruner) is saved in the study when it is created, so every worker runs the same sweep:
a worker given no definition takes the saved one, and a worker given a different one is refused.
All configurations are drawn when the study is created and enqueued as waiting trials, in order;
trial k's configuration therefore depends on (space, seed, k) alone, not on how many workers ran
or in which order they claimed trials.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from .space import Space

JOURNAL = "sweep.journal"
SETUP_LOCK = "sweep.setup.lock"
ROOT_ID = "sweep.id"
STUDY_NAME = "lcengine-sweep"
PRUNERS = ("none", "median", "halving")


class SweepError(ConfigError):
    """A sweep that cannot start or be read; the message says why, in one line."""


@dataclass
class Definition:
    """What a sweep is; identical in every worker."""
    fixed: dict          # train options every trial gets (preset, config file, command line)
    space: Space
    samples: int
    sample_seed: int
    prune: str
    prune_after: int

    def to_json(self) -> dict:
        return json.loads(json.dumps({
            "fixed": self.fixed, "space": self.space.to_json(), "samples": self.samples,
            "sample_seed": self.sample_seed, "prune": self.prune,
            "prune_after": self.prune_after}))

    @classmethod
    def from_json(cls, data: dict) -> "Definition":
        return cls(**{**data, "space": Space.from_json(data["space"])})


@dataclass
class Sweep:
    """An opened sweep: its ROOT, Optuna study and storage, and definition."""
    root: Path
    study: object
    storage: object
    definition: Definition

    def trial_id(self, number: int) -> int:
        study_id = self.storage.get_study_id_from_name(self.study.study_name)
        return self.storage.get_trial_id_from_study_id_trial_number(study_id, number)


@contextmanager
def file_lock(path: Path):
    """An exclusive flock on `path`, held while the block runs (the kernel drops it if the
    process dies)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _quiet_optuna():
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_for(root: Path, url: str | None):
    """The Optuna storage of a sweep: ROOT/sweep.journal unless a URL is given."""
    optuna = _quiet_optuna()
    if url is not None:
        return optuna.storages.get_storage(url)
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    return JournalStorage(JournalFileBackend(str(root / JOURNAL)))


def make_pruner(definition: Definition):
    """Optuna's pruner for the definition; a trial is never pruned before `prune_after` epochs.
    median: stopped when its best error so far is worse than the median of finished trials at
    the same epoch (after 5 trials finished); halving: asynchronous successive halving, rungs at
    prune_after × 3^k epochs, the best third of each rung goes on."""
    optuna = _quiet_optuna()
    if definition.prune == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5,
                                           n_warmup_steps=definition.prune_after)
    if definition.prune == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=definition.prune_after,
                                                      reduction_factor=3)
    return optuna.pruners.NopPruner()


def _root_id(root: Path) -> str:
    """An id written once in ROOT: a --storage study refuses workers whose ROOT is another
    directory (trials are resumable run directories, so all workers must share one ROOT)."""
    path = root / ROOT_ID
    try:
        with open(path, "x") as handle:
            handle.write(uuid.uuid4().hex + "\n")
    except FileExistsError:
        pass
    return path.read_text().strip()


def open_study(root: Path, url: str | None, name: str | None, given: Definition | None,
               echo=print) -> Sweep:
    """The sweep at ROOT, created from `given` if it is new. Creation runs
    under ROOT's setup lock, so workers started together create and fill the study once."""
    optuna = _quiet_optuna()
    root.mkdir(parents=True, exist_ok=True)
    name = name or STUDY_NAME
    where = url or str(root / JOURNAL)
    with file_lock(root / SETUP_LOCK):
        root_id = _root_id(root)
        storage, saved = storage_for(root, url), None
        try:
            saved = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            pass
        if saved is None or "definition" not in saved.user_attrs:
            if given is None:
                raise SweepError(f"{where}: no sweep {name!r} there yet; start one with --algo, "
                                 "--samples and the train options")
            study = saved or optuna.create_study(study_name=name, storage=storage,
                                                 direction="minimize")
            study.set_user_attr("root_id", root_id)
            study.set_user_attr("definition", given.to_json())
            echo(f"# new sweep {name!r} in {where}: {given.samples} configurations from "
                 f"{given.space.label}")
        else:
            study = saved
        definition = Definition.from_json(study.user_attrs["definition"])
        if given is not None and given.to_json() != definition.to_json():
            raise SweepError(f"{where}: the sweep there was defined differently "
                             f"({_first_difference(given.to_json(), definition.to_json())}); "
                             f"rerun it with no definition options, or use another --root")
        if study.user_attrs.get("root_id") != root_id:
            raise SweepError(f"{root}: not the root of sweep {name!r} in {where}; every worker "
                             "of a sweep must use the same --root (its trials' run directories)")
        _enqueue_missing(study, definition)
    study.pruner = make_pruner(definition)
    return Sweep(root, study, storage, definition)


def _enqueue_missing(study, definition: Definition) -> None:
    """Trials 0..samples-1 as waiting trials with their drawn configurations (a creator killed
    half-way is completed by the next worker)."""
    have = len(study.get_trials(deepcopy=False))
    draws = definition.space.draw(definition.samples, definition.sample_seed)
    for k in range(have, definition.samples):
        study.enqueue_trial(draws[k], user_attrs={"sample": k})


def _first_difference(given, saved, where: str = "") -> str:
    """Where two definitions (JSON) first differ, e.g. "fixed.width: given -, saved 0.25"."""
    if isinstance(given, dict) and isinstance(saved, dict):
        for key in [*saved, *(k for k in given if k not in saved)]:
            if given.get(key) != saved.get(key):
                return _first_difference(given.get(key, "-"), saved.get(key, "-"),
                                         f"{where}{key}.")
    return f"{where.rstrip('.')}: given {given!r}, saved {saved!r}"


def worker_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"
