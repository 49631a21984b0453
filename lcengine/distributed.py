"""Data-parallel training on K processes: `mpiexec -n K lcengine train ...`.

The contract: K processes with a minibatch of B images are the same update, step for step, as
one process with the same B. `--batch-size` is the global minibatch (the quantity Table 5's
hyper-parameters belong to); each process takes its rows of every global minibatch
(`rows`), so a run's configuration, and its checkpoints, mean the same thing whatever K is.

What makes the K-process update equal the one-process update:
  * the loader's order and augmentation draws are functions of (seed, epoch, batch) for the
    whole global minibatch; a process decodes only its rows (`Loader(part=...)`);
  * parameters, FA's feedback matrices and DFA's feedback seeds come from the same seeded RNG on
    every process, so they start identical;
  * the TP family's noise is drawn for the whole global minibatch and sliced (`PartRng`), so
    every process consumes the same random stream as one process would;
  * each process's gradients are of its rows' mean loss; weighted by rows / B and summed over
    processes (`GradientReducer`), they are the gradient of the global minibatch's mean loss.
    The same sum carries the step's losses and the Ctrl-C flag, so every process sees the same
    numbers and stops at the same minibatch;
  * every process then runs the same optimiser update on the same numbers: parameters stay
    bit-identical (checked at every checkpoint, `check_identical`).

The LC layers' fused weight-gradient + Adam update is off on K > 1: a gradient must be summed
before it is applied. Collectives run over MPI (mpi4py) on the CPU, and over NCCL (CuPy) between
GPUs, with the NCCL id sent over MPI. mpi4py is optional (`pip install "lcengine[mpi]"`); without
an MPI launcher, `world()` is the one-process group and nothing here is imported.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

#: gradients are summed in buckets of about this many bytes, each started as soon as it is
#: full while the rule computes the layers below (PyTorch DDP's default bucket is 25 MiB)
BUCKET_BYTES = 25 * 2 ** 20
#: environment variables an MPI launcher sets: MPICH/Intel MPI/Slurm PMI, Open MPI, PMIx
LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")


class DistributedError(RuntimeError):
    """A data-parallel run cannot go on as asked; the message says why, in one line."""


def rows(n: int, rank: int, size: int) -> tuple[int, int]:
    """(lo, hi): the rows of a global minibatch of n images that process `rank` of `size` takes
    (as even as possible, in rank order)."""
    return rank * n // size, (rank + 1) * n // size


class Group:
    """One process: every collective is the identity. `MPIGroup` is the K-process group."""
    rank, size = 0, 1

    @property
    def root(self) -> bool:
        return self.rank == 0

    def rows(self, n: int) -> tuple[int, int]:
        return rows(n, self.rank, self.size)

    def barrier(self) -> None:
        pass

    def broadcast(self, value):
        """Rank 0's `value` on every process (any picklable object)."""
        return value

    def sum(self, values) -> np.ndarray:
        """The element-wise sum over processes of a small float64 host vector."""
        return np.asarray(values, dtype=np.float64)

    def reducer(self, backend) -> "GradientReducer | None":
        """What sums a step's gradients; None: nothing to sum."""
        return None

    def use_local_gpu(self) -> None:
        """Make this process's GPU the current one (one process per GPU on each node)."""

    def check_identical(self, arrays: dict, to_numpy) -> None:
        pass

    def abort(self, code: int) -> None:
        pass


class MPIGroup(Group):
    def __init__(self, comm):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._nccl = None

    def barrier(self) -> None:
        self.comm.Barrier()

    def broadcast(self, value):
        return self.comm.bcast(value, root=0)

    def sum(self, values) -> np.ndarray:
        from mpi4py import MPI
        out = np.array(values, dtype=np.float64)
        self.comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
        return out

    def reducer(self, backend) -> "GradientReducer":
        collective = MPISum(self.comm) if backend.xp is np else self.nccl()
        return GradientReducer(backend, collective)

    def use_local_gpu(self) -> None:
        import cupy
        cupy.cuda.Device(local_rank(self.comm) % cupy.cuda.runtime.getDeviceCount()).use()

    def nccl(self) -> "NCCLSum":
        if self._nccl is None:
            self._nccl = NCCLSum(self.comm, self.rank, self.size)
        return self._nccl

    def check_identical(self, arrays: dict, to_numpy) -> None:
        """Raise DistributedError unless every process holds the same bits in `arrays`."""
        digest = hashlib.sha256()
        for key in sorted(arrays):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(to_numpy(arrays[key])).tobytes())
        digests = self.comm.allgather(digest.hexdigest())
        if len(set(digests)) != 1:
            differ = [r for r, d in enumerate(digests) if d != digests[0]]
            raise DistributedError(f"parameters differ between processes 0 and {differ}: the "
                                   "data-parallel update is no longer the same everywhere")

    def abort(self, code: int) -> None:
        self.comm.Abort(code)


def launched_by_mpi() -> bool:
    """Whether an MPI launcher started this process as one of several."""
    return any(int(os.environ.get(var, "1")) > 1 for var in LAUNCHER_SIZE_VARS)


_WORLD: Group | None = None


def world() -> Group:
    """The group of processes this one trains with, made once per process."""
    global _WORLD
    if _WORLD is None:
        _WORLD = _make_world()
    return _WORLD


def _make_world() -> Group:
    if not launched_by_mpi():
        return Group()
    try:
        from mpi4py import MPI
    except ImportError:
        raise DistributedError("started by an MPI launcher with several processes, but mpi4py is "
                               "not installed: pip install \"lcengine[mpi]\"") from None
    comm = MPI.COMM_WORLD
    return MPIGroup(comm) if comm.Get_size() > 1 else Group()


def local_rank(comm) -> int:
    """This process's index among the processes of its node (which GPU it takes)."""
    from mpi4py import MPI
    return comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()


# --- summing gradients ------------------------------------------------------------------------
class MPISum:
    """Non-blocking in-place sums of host buffers over MPI."""

    def __init__(self, comm):
        self.comm = comm

    def start(self, buffer):
        from mpi4py import MPI
        return self.comm.Iallreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)

    def wait(self, requests) -> None:
        from mpi4py import MPI
        MPI.Request.Waitall(requests)


class NCCLSum:
    """In-place sums of device buffers over NCCL, queued on the current stream (so they overlap
    with nothing the GPU has not yet been asked to do, and need no wait of the host)."""

    def __init__(self, comm, rank: int, size: int):
        from cupy.cuda import nccl
        self.nccl = nccl
        uid = comm.bcast(nccl.get_unique_id() if rank == 0 else None, root=0)
        self.comm = nccl.NcclCommunicator(size, uid, rank)

    def start(self, buffer):
        import cupy
        kind = {np.dtype(np.float32): self.nccl.NCCL_FLOAT32,
                np.dtype(np.float64): self.nccl.NCCL_FLOAT64}[buffer.dtype]
        self.comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, kind,
                            self.nccl.NCCL_SUM, cupy.cuda.get_current_stream().ptr)
        return None

    def wait(self, requests) -> None:
        pass


class GradientReducer:
    """Sums one step's gradients (and its scalars) over the processes, bucket by bucket.

    `begin(weight)` opens a step whose rows are `weight` of the global minibatch; `add(grads)`
    copies each gradient, times the weight, into the current bucket and starts summing a bucket
    as soon as it holds BUCKET_BYTES (the rule hands them over layer by layer, top layer first,
    `Rule.publishing_gradients`); `finish(step)` adds what was not handed over, sums the step's
    loss, local losses and `flags` in the last bucket, waits, and returns the summed gradients
    (views of the buckets) and scalars. Every process adds the same keys in the same order, so
    the buckets line up."""

    def __init__(self, backend, collective):
        self.xp, self.to_floats, self.collective = backend.xp, backend.to_floats, collective
        self.buffers: list = []          # reused step after step, grown when a step needs more

    def begin(self, weight: float) -> None:
        self.weight = weight
        self.slots: dict = {}            # key -> (bucket, offset, shape)
        self.pending: list = []          # (key, array) not yet in a started bucket
        self.added: set = set()
        self.pending_bytes = 0
        self.requests: list = []
        self.bucket = 0

    def add(self, grads: dict) -> None:
        for key, g in grads.items():
            if key in self.added:
                continue
            self.added.add(key)
            self.pending.append((key, g))
            self.pending_bytes += g.nbytes
        if self.pending_bytes >= BUCKET_BYTES:
            self._start()

    def finish(self, forward: dict, inverse: dict, scalars: list) -> tuple[dict, dict, list]:
        self.add(inverse)
        self.add(forward)
        self._start(scalars)
        self.collective.wait(self.requests)
        summed = {key: self.buffers[b][o:o + int(np.prod(shape))].reshape(shape)
                  for key, (b, o, shape) in self.slots.items()}
        last = self.buffers[self.bucket - 1]
        sums = self.to_floats(list(last[last.size - len(scalars):]))
        return ({k: summed[k] for k in forward}, {k: summed[k] for k in inverse}, sums)

    def _start(self, scalars: list = ()) -> None:
        size = sum(g.size for _, g in self.pending) + len(scalars)
        if size == 0:
            return
        dtype = self.pending[0][1].dtype if self.pending else np.float64
        buffer = self._buffer(self.bucket, size, dtype)
        offset = 0
        for key, g in self.pending:
            view = buffer[offset:offset + g.size].reshape(g.shape)
            self.xp.multiply(g, self.weight, out=view)
            self.slots[key] = (self.bucket, offset, g.shape)
            offset += g.size
        for i, value in enumerate(scalars):
            buffer[offset + i] = value * self.weight
        request = self.collective.start(buffer)
        if request is not None:
            self.requests.append(request)
        self.pending, self.pending_bytes = [], 0
        self.bucket += 1

    def _buffer(self, index: int, size: int, dtype):
        while len(self.buffers) <= index:
            self.buffers.append(self.xp.empty(0, dtype=dtype))
        if self.buffers[index].size != size or self.buffers[index].dtype != dtype:
            self.buffers[index] = self.xp.empty(size, dtype=dtype)
        return self.buffers[index]


# --- noise ------------------------------------------------------------------------------------
class PartRng:
    """The run's RNG as a rule sees it on one of K processes: `normal_like(h)` draws the noise of
    the whole global minibatch (`rows` = (lo, hi, n), set for each step) in h's memory order and
    returns this process's rows, so the K processes consume the random stream exactly as one
    process does. Everything else is the run's RNG itself."""

    def __init__(self, rng, xp):
        self._rng, self._xp = rng, xp
        self.rows = None

    def __getattr__(self, name):
        return getattr(self._rng, name)

    def normal_like(self, a, scale=1.0):
        if self.rows is None or self.rows[1] - self.rows[0] == self.rows[2]:
            return self._rng.normal_like(a, scale)
        lo, hi, n = self.rows
        if a.shape[0] != hi - lo:
            raise ValueError(f"noise for {a.shape[0]} rows, but this process holds {hi - lo}")
        return self._rng.normal_like(_global_like(self._xp, a, n), scale)[lo:hi]


def _global_like(xp, a, n: int):
    """An empty array of a's shape with n rows, its axes in a's memory order (so a batch-last
    activation gets batch-last noise, drawn in the order one process would draw it)."""
    order = sorted(range(a.ndim), key=lambda axis: -a.strides[axis]) if xp is np \
        else list(range(a.ndim))
    shape = (n,) + tuple(a.shape[1:])
    compact = xp.empty(tuple(shape[axis] for axis in order), dtype=a.dtype)
    return compact.transpose([order.index(axis) for axis in range(a.ndim)])
