"""Decode one real-world image file to RGB, resize and centre-crop it; never raise for bad input.

Grayscale, palette, CMYK and alpha images become RGB; the format is read from the content, so a
PNG named `.JPEG` works; a truncated or undecodable file comes back as `Skipped`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .plan import Skipped

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


@dataclass(frozen=True)
class Geometry:
    resize: int     # shorter side is scaled to this
    crop: int       # then the centre crop x crop is kept
    storage: str    # "raw" or "jpeg"
    quality: int    # JPEG quality when storage is "jpeg"


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def to_rgb_resized_crop(img: Image.Image, resize: int, crop: int) -> Image.Image:
    """RGB; shorter side scaled to `resize` (JPEG decoded at a reduced scale where it can be);
    then the centre `crop` x `crop`."""
    w, h = img.size
    if min(w, h) != resize:
        scale = resize / min(w, h)
        img.draft("RGB", (max(1, round(w * scale)), max(1, round(h * scale))))
    img = img.convert("RGB")
    w, h = img.size
    if min(w, h) != resize:
        scale = resize / min(w, h)
        size = (max(resize, round(w * scale)), max(resize, round(h * scale)))
        img = img.resize(size, Image.Resampling.BILINEAR)
        w, h = img.size
    left, top = (w - crop) // 2, (h - crop) // 2
    if (w, h) != (crop, crop):
        img = img.crop((left, top, left + crop, top + crop))
    return img


def encode_jpeg(chw: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0))).save(buffer, "JPEG",
                                                                      quality=quality)
    return buffer.getvalue()


def decode_image(geometry: Geometry, task):
    """`task` = (name, path or bytes) -> uint8 (3, crop, crop), its JPEG bytes, or Skipped."""
    name, content = task
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # e.g. odd EXIF; the pixels are what we check
            with Image.open(io.BytesIO(content) if isinstance(content, bytes) else content) as img:
                img = to_rgb_resized_crop(img, geometry.resize, geometry.crop)
                pixels = np.asarray(img).transpose(2, 0, 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        return Skipped(name, f"{type(err).__name__}: {err}".splitlines()[0])
    if geometry.storage == "jpeg":
        return encode_jpeg(pixels, geometry.quality)
    return np.ascontiguousarray(pixels)
