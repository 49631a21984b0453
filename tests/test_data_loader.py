"""Loader and shard set on the embedded MNIST subset: no data preparation, no shared data."""

import numpy as np
import pytest

from lcengine.backend import get_backend
from lcengine.data import DataError, Loader, open_shards
from lcengine.data.transforms import (AUGMENT, CIFAR_FILL, random_crop_flip,
                                      random_resized_crop_flip, to_float)

BACKEND = get_backend("cpu", "ref")
MINI_TRAIN_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
MINI_TEST_COUNTS = [175, 234, 219, 207, 217, 179, 178, 205, 192, 194]


def collect(loader, epoch, start_batch=0):
    return [(x.copy(), y.copy()) for x, y in loader.epoch(epoch, start_batch)]


def test_embedded_mnist_mini_opens_with_its_stated_counts():
    train, test = open_shards("mnist-mini", "train"), open_shards("mnist-mini", "test")
    assert (train.count, test.count) == (10_000, 2_000)
    assert train.image_shape == (1, 28, 28) and train.n_classes == 10
    assert train.dataset == "mnist" and train.class_names == [str(d) for d in range(10)]
    assert np.bincount(train.labels).tolist() == MINI_TRAIN_COUNTS
    assert np.bincount(test.labels).tolist() == MINI_TEST_COUNTS


def test_batches_are_float32_pixels_over_255_and_int64_labels():
    shards = open_shards("mnist-mini", "test")
    x, y = next(Loader(shards, 64, seed=0, train=False, backend=BACKEND, shuffle=False).epoch(0))
    assert x.dtype == np.float32 and x.shape == (64, 1, 28, 28) and y.dtype == np.int64
    np.testing.assert_array_equal(x, shards.read(np.arange(64)).astype(np.float32) / 255)
    np.testing.assert_array_equal(y, shards.labels[:64])


def test_same_seed_same_batches_other_epoch_other_order_each_sample_once():
    shards = open_shards("mnist-mini", "test")
    loader = Loader(shards, 128, seed=7, train=True, backend=BACKEND)
    first, again = collect(loader, 0), collect(loader, 0)
    assert len(first) == len(loader) == 16
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(loader.order(0), loader.order(1))
    for epoch in (0, 1):
        assert np.array_equal(np.sort(loader.order(epoch)), np.arange(shards.count))
    labels = np.concatenate([y for _, y in first])
    assert np.array_equal(np.sort(labels), np.sort(shards.labels))


def test_resumed_epoch_reproduces_the_remaining_batches():
    shards = open_shards("mnist-mini", "test")
    loader = Loader(shards, 100, seed=3, train=True, backend=BACKEND)
    full, resumed = collect(loader, 2), collect(loader, 2, start_batch=13)
    assert len(resumed) == len(full) - 13
    for (x1, y1), (x2, y2) in zip(full[13:], resumed):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_drop_last_and_batch_count():
    shards = open_shards("mnist-mini", "test")
    assert len(Loader(shards, 300, seed=0, train=False, backend=BACKEND)) == 7
    loader = Loader(shards, 300, seed=0, train=False, backend=BACKEND, drop_last=True)
    assert len(loader) == 6 and all(len(y) == 300 for _, y in loader.epoch(0))


def test_an_abandoned_epoch_stops_its_prefetch_thread():
    loader = Loader(open_shards("mnist-mini", "train"), 32, seed=0, train=True, backend=BACKEND)
    batches = loader.epoch(0)
    next(batches)
    batches.close()
    assert len(collect(loader, 0)) == len(loader)


def test_worker_processes_give_the_same_batches():
    shards = open_shards("mnist-mini", "test")
    plain = collect(Loader(shards, 500, seed=1, train=True, backend=BACKEND), 0)
    workers = collect(Loader(shards, 500, seed=1, train=True, backend=BACKEND, workers=2), 0)
    for (x1, y1), (x2, y2) in zip(plain, workers, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_cifar_crop_keeps_a_shifted_window_and_flip_mirrors():
    images = np.arange(2 * 3 * 32 * 32, dtype=np.int64).reshape(2, 3, 32, 32) % 251
    images = images.astype(np.uint8)
    out = random_crop_flip(images, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    top, left, flip = rng.integers(0, 9, 2), rng.integers(0, 9, 2), rng.random(2) < 0.5
    for i in range(2):
        padded = np.pad(images[i], ((0, 0), (4, 4), (4, 4)))
        window = padded[:, top[i]:top[i] + 32, left[i]:left[i] + 32]
        np.testing.assert_array_equal(out[i], window[:, :, ::-1] if flip[i] else window)


def test_cifar_crops_are_padded_with_the_mean_colour_which_normalises_to_zero():
    images = np.full((64, 3, 32, 32), 255, np.uint8)
    out = AUGMENT["cifar10"](images, np.random.default_rng(1))
    border = out != 255                               # what the padding brought in
    assert border.any()
    for channel, fill in enumerate(CIFAR_FILL):
        assert set(np.unique(out[:, channel][border[:, channel]])) == {fill}
    x = to_float(np.asarray(CIFAR_FILL, np.uint8).reshape(1, 3, 1, 1), "cifar10")
    np.testing.assert_allclose(x, 0.0, atol=0.01)     # the mean colour, within a pixel's rounding


def test_random_resized_crop_keeps_shape_and_is_seeded():
    images = np.random.default_rng(0).integers(0, 256, (3, 3, 40, 50), dtype=np.uint8)
    a = random_resized_crop_flip(images, np.random.default_rng(5))
    b = random_resized_crop_flip(images, np.random.default_rng(5))
    assert a.shape == images.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_unknown_split_and_missing_directory_say_what_is_wrong(tmp_path):
    with pytest.raises(DataError, match="no split 'val'"):
        open_shards("mnist-mini", "val")
    with pytest.raises(DataError, match="no such directory"):
        open_shards(tmp_path / "nothing", "train")
    (tmp_path / "half").mkdir()
    with pytest.raises(DataError, match="manifest.json: missing"):
        open_shards(tmp_path / "half", "train")
