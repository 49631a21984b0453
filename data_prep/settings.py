"""What a rerun of `lcengine prep` into an existing --out may do.

The settings that decide a prep's bytes (its sources and every option that changes the shards,
`--shard-mb` and `--gzip` included) are stored as OUT/prep.json before the first shard. A rerun
with the same settings continues an interrupted prep (or finds a finished one); with others it
stops and says what differs, so shard layouts are never mixed and a finished set is never
reported as rewritten when nothing was written.
"""

from __future__ import annotations

import json
from pathlib import Path

from lcengine.data.errors import DataError
from lcengine.data.shard_format import MANIFEST, write_json_atomic

SETTINGS = "prep.json"
#: the option behind each stored setting, to say what differs in the user's words
OPTIONS = {"dataset": "DATASET", "storage": "--storage", "limit_per_class": "--limit",
           "resize": "--resize", "crop": "--crop", "jpeg_quality": "--jpeg-quality",
           "shard_mb": "--shard-mb", "gzip": "--gzip", "image_shape": "--resize/--crop",
           "source_checksums": "--source", "class_names": "--source"}


def check_or_store(out: Path, settings: dict) -> None:
    """Store `settings` in a fresh OUT; in a used one, raise DataError unless they are the same."""
    path = out / SETTINGS
    if not path.exists():
        if not (out / MANIFEST).exists() and not any(out.glob("*.h5")):
            write_json_atomic(path, settings)
        return      # else made by a prep that kept no settings: each shard's prep_config is checked
    try:
        stored = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: unreadable ({err}); delete {out} to start over") from None
    if stored == settings:
        return
    differs = "; ".join(difference(key, stored.get(key), settings.get(key))
                        for key in sorted(set(stored) | set(settings))
                        if stored.get(key) != settings.get(key))
    if (out / MANIFEST).exists():
        raise DataError(f"{out}: holds a finished shard set made with other settings ({differs}); "
                        f"delete it or choose another --out to prepare these")
    raise DataError(f"{out}: holds an unfinished prep with other settings ({differs}); rerun "
                    f"with its settings to finish it, or delete {out} to start over")


def difference(key: str, before, now) -> str:
    option = OPTIONS.get(key, key)
    if key in ("source_checksums", "class_names"):
        return f"{option}: other source files"
    return f"{option} {_shown(before)} before, {_shown(now)} now"


def _shown(value) -> str:
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)
