"""Preprocessing and augmentation: uint8 images (n, C, H, W) -> float32 (n, C, H, W).

Choices, per dataset (the `dataset` name of a shard set):
- mnist:    pixels / 255, no augmentation, no mean subtraction.
- cifar10:  train: random 32x32 crop of the image padded by 4 on every side with the mean
            colour, then a horizontal flip with probability 1/2. Then pixels / 255 and
            per-channel normalisation with the CIFAR-10 training-set mean and std (the usual
            constants). The mean colour normalises to 0, so the border carries no signal: a
            black border (-2 std) marks 80 of 81 training crops and no test image, and a net
            without shared weights learns to rely on it (CIFAR-10 FC, BP: docs/results.md).
- imagenet: train: random-resized crop (area 8%-100% of the stored image, aspect ratio 3/4-4/3,
            10 tries then the centre), bilinear resize back to the stored size, horizontal flip
            with probability 1/2. Eval: the stored image, which prep already centre-cropped.
            Then pixels / 255 and per-channel normalisation with the ImageNet mean and std.
Any other dataset: pixels / 255.
All random draws come from the `rng` the loader seeds per (seed, epoch, batch), and are drawn for
the whole minibatch of n images even where only its rows start.. are made here (one of several
data-parallel processes, `lcengine.distributed`): every process sees the draws one process would.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
from PIL import Image

MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
CIFAR_PAD = 4
RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3 / 4, 4 / 3)


def random_crop_flip(images: np.ndarray, rng: np.random.Generator, n: int | None = None,
                     start: int = 0, pad: int = CIFAR_PAD, fill=0):
    """Rows start.. of a minibatch of n (default: images is the whole minibatch); the padding is
    `fill` (a value per channel)."""
    rows, c, h, w = images.shape
    n = rows if n is None else n
    padded = np.empty((rows, c, h + 2 * pad, w + 2 * pad), np.uint8)
    padded[...] = np.asarray(fill, np.uint8).reshape(-1, 1, 1)
    padded[:, :, pad:pad + h, pad:pad + w] = images
    top = rng.integers(0, 2 * pad + 1, n)[start:]
    left = rng.integers(0, 2 * pad + 1, n)[start:]
    flip = (rng.random(n) < 0.5)[start:]
    out = np.empty_like(images)
    for i in range(rows):
        crop = padded[i, :, top[i]:top[i] + h, left[i]:left[i] + w]
        out[i] = crop[:, :, ::-1] if flip[i] else crop
    return out


def resized_crop_box(h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a random-resized crop of an h x w image."""
    for _ in range(10):
        area = h * w * rng.uniform(*RRC_SCALE)
        ratio = math.exp(rng.uniform(math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])))
        cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return left, top, left + cw, top + ch
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return left, top, left + side, top + side


def random_resized_crop_flip(images: np.ndarray, rng: np.random.Generator, n: int | None = None,
                             start: int = 0):
    """Rows start.. of a minibatch of n (default: images is the whole minibatch)."""
    rows, c, h, w = images.shape
    n = rows if n is None else n
    draws = [(resized_crop_box(h, w, rng), rng.random() < 0.5) for _ in range(n)]
    out = np.empty_like(images)
    for i, (box, flip) in enumerate(draws[start:start + rows]):
        hwc = np.ascontiguousarray(images[i].transpose(1, 2, 0))
        img = Image.fromarray(hwc[:, :, 0] if c == 1 else hwc)
        resized = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR, box=box))
        resized = resized.reshape(h, w, c).transpose(2, 0, 1)
        out[i] = resized[:, :, ::-1] if flip else resized
    return out


#: CIFAR-10's mean colour as pixels, what its crops are padded with
CIFAR_FILL = tuple(round(255 * m) for m in MEAN_STD["cifar10"][0])
AUGMENT = {"cifar10": partial(random_crop_flip, fill=CIFAR_FILL),
           "imagenet": random_resized_crop_flip}


def to_float(images: np.ndarray, dataset: str) -> np.ndarray:
    """Scale to [0, 1], then normalise per channel where the dataset has constants."""
    x = images.astype(np.float32)
    x /= np.float32(255)
    if dataset in MEAN_STD:
        mean, std = (np.asarray(v, np.float32)[:, None, None] for v in MEAN_STD[dataset])
        x -= mean
        x /= std
    return x


def preprocess(images: np.ndarray, dataset: str, train: bool, rng: np.random.Generator,
               n: int | None = None, start: int = 0):
    """`images` are rows start.. of a minibatch of n (default: the whole minibatch)."""
    if train and dataset in AUGMENT:
        images = AUGMENT[dataset](images, rng, n, start)
    return to_float(images, dataset)
