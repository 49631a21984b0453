"""Write a Plan as shards, resumably, and commit the set with a manifest written last.

Shard k of a split covers the source items [source_start, source_stop); its images are the good
ones among them, in order, and its `skipped` attribute lists the bad ones. Shards close when the
next image would pass `shard_bytes`. A rerun keeps every shard already renamed to its final name
(they are whole, and their `prep_config` says they came from the same options) and resumes at the
last one's `source_stop`; decoding is deterministic, so the result equals an uninterrupted run.
The settings are stored first (settings.py), so a rerun with other options cannot mix layouts;
the manifest lists each shard's SHA-256, which `lcengine prep --verify` and the loader check.
"""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from lcengine.data.errors import DataError
from lcengine.data.parallel import ordered_map
from lcengine.data.shard_format import (FORMAT_VERSION, MAGIC, MANIFEST, read_shard_attrs,
                                        shard_name, write_json_atomic, write_shard)
from lcengine.data.shards import read_manifest
from lcengine.storage import file_digest

from .plan import Plan, Skipped, Split
from .settings import check_or_store


def prep_config(plan: Plan) -> dict:
    return {"dataset": plan.dataset, "storage": plan.storage,
            "image_shape": list(plan.image_shape), "class_names": plan.class_names,
            "source_checksums": plan.source_checksums, **plan.options}


def prepare(plan: Plan, out: Path, *, shard_bytes: int, compress: bool, workers: int,
            strict: bool) -> dict:
    """Write every split of `plan` under `out`, then the manifest; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    config = prep_config(plan)
    check_or_store(out, {**config, "shard_mb": shard_bytes / 2**20, "gzip": compress})
    if (out / MANIFEST).exists():
        manifest = read_manifest(out)
        if manifest["prep_config"] != config:
            raise DataError(f"{out}: holds a finished shard set made from other sources or "
                            "options; choose another --out")
        return manifest
    for stale in out.glob("*.tmp"):
        stale.unlink()
    splits = {}
    for split in plan.splits:
        writer = SplitWriter(plan, split, out, config, shard_bytes, compress, strict)
        writer.run(workers)
        splits[split.name] = writer.summary()
    manifest = {"magic": "lcengine-shards", "format_version": FORMAT_VERSION,
                "dataset": plan.dataset, "storage": plan.storage,
                "image_shape": list(plan.image_shape), "class_names": plan.class_names,
                "source_checksums": plan.source_checksums, "prep_config": config,
                "splits": splits}
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


class SplitWriter:
    def __init__(self, plan: Plan, split: Split, out: Path, config: dict, shard_bytes: int,
                 compress: bool, strict: bool):
        self.plan, self.split, self.out, self.config = plan, split, out, config
        self.shard_bytes, self.compress, self.strict = shard_bytes, compress, strict
        self.done: list[tuple[Path, dict]] = []     # finished shards: (path, attrs)
        self._find_finished()

    def _find_finished(self) -> None:
        while (path := self.out / shard_name(self.split.name, len(self.done))).exists():
            attrs = read_shard_attrs(path)
            if attrs["prep_config"] != self.config:
                raise DataError(f"{path}: left by a prep with other sources or options; "
                                "choose another --out or delete the directory")
            self.done.append((path, attrs))

    def run(self, workers: int) -> None:
        split = self.split
        start = self.done[-1][1]["source_stop"] if self.done else 0
        if self.done and start == len(split.tasks):
            return
        buffer, skipped, nbytes, shard_start = [], [], 0, start
        results = decoded(split, start, workers, f"{self.plan.dataset} {split.name}")
        try:
            for position, result in enumerate(results, start):
                if isinstance(result, Skipped):
                    if self.strict:
                        raise DataError(f"{result.name}: {result.reason} (--strict)")
                    skipped.append({"item": result.name, "reason": result.reason})
                    continue
                size = len(result) if isinstance(result, bytes) else result.nbytes
                if buffer and nbytes + size > self.shard_bytes:
                    self._write(buffer, skipped, shard_start, position)
                    buffer, skipped, nbytes, shard_start = [], [], 0, position
                buffer.append((position, result))
                nbytes += size
        except BrokenProcessPool as err:
            raise DataError(f"{split.name}: a decoding worker process died ({err}); rerun to "
                            "resume, or use --workers 1 to find the image that kills it") from None
        finally:
            results.close()
        self._write(buffer, skipped, shard_start, len(split.tasks))

    def _write(self, buffer, skipped, source_start: int, source_stop: int) -> None:
        positions = np.asarray([p for p, _ in buffer], np.int64)
        payloads = [r for _, r in buffer]
        if self.plan.storage == "raw":
            images = np.stack(payloads) if payloads else np.zeros((0,) + self.plan.image_shape,
                                                                   np.uint8)
        else:
            images = payloads
        attrs = {"magic": MAGIC, "format_version": FORMAT_VERSION, "dataset": self.plan.dataset,
                 "split": self.split.name, "index": len(self.done), "count": len(buffer),
                 "image_shape": list(self.plan.image_shape), "dtype": "uint8",
                 "storage": self.plan.storage, "class_names": self.plan.class_names,
                 "source_checksums": self.plan.source_checksums, "prep_config": self.config,
                 "source_start": source_start, "source_stop": source_stop, "skipped": skipped}
        path = self.out / shard_name(self.split.name, len(self.done))
        labels = self.split.labels[positions] if len(positions) else np.zeros(0, np.int64)
        write_shard(path, attrs, images, labels, self.compress)
        self.done.append((path, attrs))

    def summary(self) -> dict:
        labels = [read_labels(p) for p, _ in self.done]
        counts = np.bincount(np.concatenate(labels), minlength=len(self.plan.class_names))
        return {"count": int(sum(a["count"] for _, a in self.done)),
                "class_counts": counts.tolist(),
                "shards": [{"file": p.name, "count": a["count"], "bytes": p.stat().st_size,
                            "sha256": file_digest(p)} for p, a in self.done],
                "skipped": [s for _, a in self.done for s in a["skipped"]]}


def read_labels(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["labels"][()]


def decoded(split: Split, start: int, workers: int, label: str):
    """Decoded tasks of `split` from `start`, in order, with a progress bar."""
    tasks = split.tasks[start:]
    if split.parallel and workers > 1 and len(tasks) > 1:
        results = ordered_map(split.decode, tasks, workers, chunksize=32)
    else:
        results = map(split.decode, tasks)
    with tqdm(total=len(split.tasks), initial=start, desc=label, unit="img", disable=None,
              leave=False) as bar:
        try:
            for result in results:
                bar.update()
                yield result
        finally:
            if hasattr(results, "close"):
                results.close()
