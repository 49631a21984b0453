"""Checks of `lcengine prep`'s numeric options, each failure one line naming the option."""

from __future__ import annotations

import math

from lcengine.data.errors import DataError

#: Pillow's useful JPEG qualities: above 95 its docs advise against (no gain, much larger files)
JPEG_QUALITY = (1, 95)


def check_prep_options(*, limit, shard_mb, jpeg_quality, workers, resize, crop) -> None:
    if limit is not None and limit < 1:
        raise DataError(f"--limit {limit}: must be >= 1 (images kept per class); leave it out "
                        "to keep every image")
    if not (math.isfinite(shard_mb) and shard_mb > 0):
        raise DataError(f"--shard-mb {shard_mb:g}: must be a number > 0 (MiB of images per "
                        "shard file)")
    low, high = JPEG_QUALITY
    if not low <= jpeg_quality <= high:
        raise DataError(f"--jpeg-quality {jpeg_quality}: must be in {low}..{high}")
    if workers < 0:
        raise DataError(f"--workers {workers}: must be >= 0 (0 or 1: decode in this process)")
    for name, value in (("--resize", resize), ("--crop", crop)):
        if value < 1:
            raise DataError(f"{name} {value}: must be >= 1 (pixels)")
