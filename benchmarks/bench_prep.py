"""Prep throughput (images/s) for ImageNet-style JPEG folders, one JSON line per config.

    python benchmarks/bench_prep.py [IMAGENET_DIR]   (default ../shared/data/imagenet_sample)

Runs `lcengine prep imagenet` into a temporary directory with 1 and 2 worker processes, storing
raw and JPEG; also on the sample's full-resolution images (resize 256, crop 224), where the
decode-and-resize cost of real ImageNet shows.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from data_prep.cli import prep

ROOT = Path(__file__).resolve().parents[1]


def bench(source: Path, workers: int, storage: str, resize: int, crop: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = CliRunner().invoke(prep, ["imagenet", "--source", str(source), "--out", tmp,
                                           "--workers", str(workers), "--storage", storage,
                                           "--resize", str(resize), "--crop", str(crop)])
        seconds = time.perf_counter() - start
        if result.exit_code:
            raise SystemExit(result.output)
        splits = json.loads((Path(tmp) / "manifest.json").read_text())["splits"]
        images = sum(split["count"] for split in splits.values())
        stored = sum(p.stat().st_size for p in Path(tmp).glob("*.h5"))
    return {"source": str(source), "workers": workers, "storage": storage, "resize": resize,
            "crop": crop, "images": images, "seconds": round(seconds, 2),
            "images_per_s": round(images / seconds, 1),
            "stored_bytes_per_image": round(stored / images)}


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        ROOT.parent / "shared" / "data" / "imagenet_sample"
    for workers in (1, 2):
        for storage in ("raw", "jpeg"):
            print(json.dumps(bench(source, workers, storage, 224, 224)), flush=True)
    fullres = source / "fullres_one_per_class"
    if fullres.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "train").symlink_to(fullres)
            for workers in (1, 2):
                print(json.dumps(bench(Path(tmp), workers, "jpeg", 256, 224)), flush=True)


if __name__ == "__main__":
    main()
