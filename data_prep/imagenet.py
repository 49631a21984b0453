"""ImageNet (ILSVRC-2012) from the standard layout.

    SOURCE/train/<wnid>/*.JPEG
    SOURCE/val/<wnid>/*.JPEG                  or   SOURCE/val/*.JPEG plus a ground-truth file:
        LOC_val_solution.csv (Kaggle: ImageId,PredictionString "<wnid> x y x y ...") or
        any text file of "<file name> <wnid>" lines (--val-labels; also found as
        SOURCE/val_labels.txt).
Class index = position of the wnid among the 1000 sorted ILSVRC-2012 wnids, whichever of them
are present; n_classes is always 1000.
"""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import numpy as np

from lcengine.data.errors import DataError

from .checksums import listing_digest
from .images import Geometry, decode_image, is_image_name
from .imagenet_classes import CLASSES, INDEX
from .plan import Plan, Split, limit_per_class

SPLITS = ("train", "val")
VAL_LABEL_FILES = ("LOC_val_solution.csv", "val_labels.txt")


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p.name))


def class_folder_items(split_dir: Path) -> list[tuple[int, Path]]:
    items = []
    for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        if folder.name not in INDEX:
            raise DataError(f"{folder}: {folder.name!r} is not one of the 1000 ILSVRC-2012 wnids")
        files = image_files(folder)
        if not files:
            raise DataError(f"{folder}: class folder holds no images (incomplete copy?)")
        items += [(INDEX[folder.name], path) for path in files]
    return items


def read_val_labels(path: Path) -> dict[str, int]:
    """{file name: class index} from a Kaggle CSV or "<file> <wnid or index>" lines."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: unreadable ground-truth file ({err})") from None
    if text.startswith("ImageId,"):
        rows = [(r["ImageId"], r["PredictionString"].split()[0])
                for r in csv.DictReader(text.splitlines())]
    else:
        rows = [tuple(line.split()[:2]) for line in text.splitlines() if line.strip()]
    labels = {}
    for number, row in enumerate(rows, 1):
        if len(row) != 2:
            raise DataError(f"{path}: line {number} is not '<file name> <wnid>'")
        name, label = row
        if label in INDEX:
            labels[Path(name).stem] = INDEX[label]
        elif label.isdigit() and int(label) < len(CLASSES):
            labels[Path(name).stem] = int(label)
        else:
            raise DataError(f"{path}: line {number}: {label!r} is neither an ILSVRC-2012 wnid "
                            "nor a class index 0..999")
    return labels


def flat_val_items(val_dir: Path, labels_path: Path | None) -> list[tuple[int, Path]]:
    if labels_path is None:
        found = [val_dir.parent / n for n in VAL_LABEL_FILES if (val_dir.parent / n).is_file()]
        if not found:
            raise DataError(f"{val_dir}: flat val images need a ground-truth file; give "
                            f"--val-labels, or put {' or '.join(VAL_LABEL_FILES)} beside it")
        labels_path = found[0]
    labels = read_val_labels(labels_path)
    items = []
    for path in image_files(val_dir):
        if path.stem not in labels:
            raise DataError(f"{path}: not listed in the ground-truth file {labels_path}")
        items.append((labels[path.stem], path))
    return items


def imagenet_plan(source: Path, *, limit: int | None = None, storage: str = "jpeg",
                  resize: int = 224, crop: int = 224, quality: int = 90,
                  val_labels: Path | None = None) -> Plan:
    if not (source / "train").is_dir() and not (source / "val").is_dir():
        raise DataError(f"{source}: no train/ or val/ folder of ILSVRC-2012 images")
    geometry = Geometry(resize=resize, crop=crop, storage=storage, quality=quality)
    splits, checksums = [], {}
    for name in SPLITS:
        split_dir = source / name
        if not split_dir.is_dir():
            continue
        if name == "val" and image_files(split_dir):
            items = flat_val_items(split_dir, val_labels)
        else:
            items = class_folder_items(split_dir)
        if not items:
            raise DataError(f"{split_dir}: holds no images")
        items.sort()
        labels = np.asarray([label for label, _ in items], np.int64)
        keep = limit_per_class(labels, limit)
        paths = [items[i][1] for i in keep]
        checksums[f"{name}-listing-sha256"] = listing_digest(paths, source)
        tasks = [(str(p), str(p)) for p in paths]
        splits.append(Split(name, tasks, labels[keep], partial(decode_image, geometry),
                            parallel=True))
    options = {"limit_per_class": limit, "resize": resize, "crop": crop,
               "jpeg_quality": quality if storage == "jpeg" else None}
    return Plan("imagenet", [n for _, n in CLASSES], (3, crop, crop), storage, checksums, splits,
                options)
