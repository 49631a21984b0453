"""Minibatches from a shard set: seeded shuffle per epoch, background prefetch, optional workers.

The order of epoch `e` is a pure function of (seed, e); the augmentation draws of batch `b` come
from a generator seeded by (seed, e, b). So `epoch(e, start_batch=k)` yields exactly the batches
k, k+1, ... of an uninterrupted epoch, bit for bit, and a resumed run reproduces a fresh one.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from ..distributed import rows
from .errors import DataError
from .parallel import ordered_map
from .shards import ShardSet, open_shards
from .transforms import preprocess

PREFETCH = 4          # batches ready ahead of the training loop
RAM_FRACTION = 0.25   # hold the whole split in RAM when it needs at most this part of memory

_WORKER_SETS: dict = {}


def batch_rng(seed: int, epoch: int, batch: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, batch])))


def fits_in_ram(nbytes: int) -> bool:
    return nbytes <= RAM_FRACTION * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _make_batch(shards: ShardSet, indices, seed, epoch, batch, train, part=(0, 1)):
    """Batch `batch` of `epoch` (its images `indices`), or process part[0]'s rows of it when
    part[1] processes share it: augmented with the whole batch's draws either way."""
    lo, hi = rows(len(indices), *part)
    mine = indices[lo:hi]
    x = preprocess(shards.read(mine), shards.dataset, train, batch_rng(seed, epoch, batch),
                   len(indices), lo)
    return x, shards.labels[mine]


def _worker_batch(task):
    """Runs in a worker process: opens the shard set once per process, then makes one batch."""
    source, split, *args = task
    if (source, split) not in _WORKER_SETS:
        _WORKER_SETS[(source, split)] = open_shards(source, split)
    return _make_batch(_WORKER_SETS[(source, split)], *args)


class Loader:
    """Iterate `(x float32 (N,C,H,W), labels int64 (N,))` as arrays of `backend.xp` (on a GPU,
    copied while the previous step runs: `backend.device_batches`).

    `train` turns augmentation on (see transforms.py). `workers` > 0 decodes and augments in that
    many worker processes (worth it for JPEG-stored ImageNet); 0 does it in one prefetch thread.
    `part` = (rank, size): of each minibatch, only the rows data-parallel process `rank` of
    `size` takes (`distributed.rows`); the order and the draws stay those of the whole batch.
    """

    def __init__(self, shards: ShardSet, batch_size: int, *, seed: int, train: bool, backend,
                 shuffle: bool = True, drop_last: bool = False, workers: int = 0,
                 part: tuple[int, int] = (0, 1)):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.shards = shards
        self.batch_size = batch_size
        self.seed = int(seed)
        self.train = train
        self.backend = backend
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.workers = workers
        self.part = part
        if workers == 0 and fits_in_ram(shards.nbytes):
            shards.load_into_memory()

    def __len__(self) -> int:
        full, rest = divmod(self.shards.count, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def batch_rows(self, batch: int) -> int:
        """How many images minibatch `batch` holds (all processes' rows together)."""
        return min(self.batch_size, self.shards.count - batch * self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The sample order of `epoch`: a permutation seeded by (seed, epoch), or 0..count-1."""
        if not self.shuffle:
            return np.arange(self.shards.count)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, epoch])))
        return rng.permutation(self.shards.count)

    def epoch(self, epoch: int, start_batch: int = 0):
        order = self.order(epoch)
        batches = [(b, order[b * self.batch_size:(b + 1) * self.batch_size])
                   for b in range(start_batch, len(self))]
        ready: queue.Queue = queue.Queue(PREFETCH)
        stop = threading.Event()
        producer = threading.Thread(target=self._produce, args=(epoch, batches, ready, stop),
                                    daemon=True)
        producer.start()
        try:
            yield from self.backend.device_batches(_received(ready, len(batches)))
        finally:
            stop.set()
            while producer.is_alive():
                try:
                    ready.get_nowait()
                except queue.Empty:
                    producer.join(0.01)

    def _produce(self, epoch, batches, ready: queue.Queue, stop: threading.Event) -> None:
        try:
            if self.workers:
                tasks = [(self.shards.source, self.shards.split, idx, self.seed, epoch, b,
                          self.train, self.part) for b, idx in batches]
                results = ordered_map(_worker_batch, tasks, self.workers, lookahead=PREFETCH)
                try:
                    for item in results:
                        if not _put(ready, item, stop):
                            return
                finally:
                    results.close()
            else:
                for b, idx in batches:
                    item = _make_batch(self.shards, idx, self.seed, epoch, b, self.train,
                                       self.part)
                    if not _put(ready, item, stop):
                        return
        except BrokenProcessPool as err:
            _put(ready, DataError(f"{self.shards.directory}: a data worker process died ({err}); "
                                  "resume the run, or use fewer --workers if memory ran out"),
                 stop)
        except BaseException as err:  # handed to the consumer, which raises it
            _put(ready, err, stop)


def _received(ready: queue.Queue, count: int):
    """The producer's `count` batches as they come; an exception it handed over is raised."""
    for _ in range(count):
        item = ready.get()
        if isinstance(item, BaseException):
            raise item
        yield item


def _put(ready: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False
