"""Regenerate lcengine/data/embedded/: the first 10,000 train and 2,000 test images of the official
MNIST files, as gzip-compressed shards made by data_prep.

    python bin/make_mnist_mini.py [MNIST_DIR]     (default ../shared/data/mnist)
"""

import shutil
import sys
import tempfile
from pathlib import Path

from data_prep.mnist import mnist_plan
from data_prep.writer import prepare

ROOT = Path(__file__).resolve().parents[1]
EMBEDDED = ROOT / "lcengine" / "data" / "embedded"
HEAD = {"train": 10_000, "test": 2_000}


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "mnist"
    plan = mnist_plan(source, verify=True, head=HEAD)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = prepare(plan, Path(tmp) / "embedded", shard_bytes=2**30, compress=True,
                           workers=1, strict=True)
        shutil.rmtree(EMBEDDED, ignore_errors=True)
        shutil.copytree(Path(tmp) / "embedded", EMBEDDED)
    for name, split in manifest["splits"].items():
        print(f"{name}: {split['count']} images, class counts {split['class_counts']}")
    print(f"wrote {EMBEDDED} ({sum(p.stat().st_size for p in EMBEDDED.iterdir())} bytes)")


if __name__ == "__main__":
    main()
