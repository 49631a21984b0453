"""Prep of the real MNIST, CIFAR-10 and ImageNet sample, checked against independent reads."""

import gzip
import io
import json
import pickle
import shutil
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from data_prep.cli import prep
from lcengine.data import open_shards

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]
IMAGENET_INDEX = {"n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491,
                  "n03028079": 497, "n03394916": 566, "n03417042": 569, "n03425413": 571,
                  "n03445777": 574, "n03888257": 701}


def run_prep(*args):
    result = CliRunner().invoke(prep, [str(a) for a in args] + ["--workers", "2"])
    assert result.exit_code == 0, result.output
    return result


def all_images(shards):
    return shards.read(np.arange(shards.count))


def read_idx(path, header):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)


def records(path):
    raw = np.fromfile(path, np.uint8).reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def test_mnist_prep_is_bit_exact(shared_data, tmp_path):
    run_prep("mnist", "--source", shared_data / "mnist", "--out", tmp_path)
    for split, stem, counts in (("train", "train", MNIST_TRAIN_COUNTS),
                                ("test", "t10k", MNIST_TEST_COUNTS)):
        shards = open_shards(tmp_path, split)
        images = read_idx(shared_data / "mnist" / f"{stem}-images-idx3-ubyte.gz", 16)
        labels = read_idx(shared_data / "mnist" / f"{stem}-labels-idx1-ubyte.gz", 8)
        np.testing.assert_array_equal(all_images(shards), images.reshape(-1, 1, 28, 28))
        np.testing.assert_array_equal(shards.labels, labels)
        assert np.bincount(shards.labels).tolist() == counts


def test_embedded_subset_is_the_head_of_the_official_files(shared_data):
    images = read_idx(shared_data / "mnist" / "train-images-idx3-ubyte.gz", 16)
    shards = open_shards("mnist-mini", "train")
    np.testing.assert_array_equal(all_images(shards), images.reshape(-1, 1, 28, 28)[:10_000])


def decode(blob_or_path):
    with Image.open(io.BytesIO(blob_or_path) if isinstance(blob_or_path, bytes)
                    else blob_or_path) as img:
        return np.asarray(img.convert("RGB")).transpose(2, 0, 1)


def test_cifar_jpeg_archive_matches_an_independent_decode(shared_data, tmp_path):
    """The first 300 images of each class (all 60,000: docs/data.md, the same code path)."""
    archive = shared_data / "cifar10" / "cifar-10-jpeg.tar.gz"
    run_prep("cifar10", "--source", archive, "--out", tmp_path, "--limit", "300")
    expected = {"train": {}, "test": {}}
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isfile() and int(member.name[-8:-4]) < 300:
                _, split, cls, name = member.name.split("/")
                expected[split][(CIFAR_CLASSES.index(cls), name)] = \
                    decode(tar.extractfile(member).read())
    for split, per_class in (("train", 300), ("test", 300)):
        shards = open_shards(tmp_path, split)
        keys = sorted(expected[split])
        assert shards.class_names == CIFAR_CLASSES
        np.testing.assert_array_equal(shards.labels, [label for label, _ in keys])
        np.testing.assert_array_equal(all_images(shards),
                                      np.stack([expected[split][k] for k in keys]))
        assert np.bincount(shards.labels).tolist() == [per_class] * 10


def test_cifar_binary_records_match_the_official_labels(shared_data, tmp_path):
    source = shared_data / "cifar10" / "cifar-10-subset-bin"
    run_prep("cifar10", "--source", source, "--out", tmp_path)
    official = json.loads((shared_data / "cifar10" / "cifar-10-labels.json").read_text())
    files = sorted(source.glob("data_batch_*.bin"))
    train = open_shards(tmp_path, "train")
    parts = [records(f) for f in files]
    np.testing.assert_array_equal(all_images(train), np.concatenate([p[0] for p in parts]))
    np.testing.assert_array_equal(train.labels, np.concatenate([p[1] for p in parts]))
    official_train = np.concatenate([official[f.name.split(".")[0]][:len(p[1])]
                                     for f, p in zip(files, parts)])
    np.testing.assert_array_equal(train.labels, official_train)
    test = open_shards(tmp_path, "test")
    np.testing.assert_array_equal(test.labels, official["test_batch"][:1017])
    assert np.bincount(train.labels, minlength=10).sum() == 8068 and test.count == 1017


def official_tarball(tmp_path, source, kind):
    """A small archive in the official layout (binary or python) from the exact subset records."""
    path = tmp_path / f"cifar-10-{kind}.tar.gz"
    folder = "cifar-10-batches-bin" if kind == "binary" else "cifar-10-batches-py"
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(source.glob("*.bin")):
            stem = f.name.split(".")[0]
            if kind == "binary":
                blob = f.read_bytes()
                name = f"{stem}.bin"
            else:
                images, labels = records(f)
                blob = pickle.dumps({b"batch_label": stem.encode(), b"labels": labels.tolist(),
                                     b"data": images.reshape(len(images), -1)}, protocol=2)
                name = stem
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


@pytest.mark.parametrize("kind", ["binary", "python"])
def test_cifar_official_archive_layouts(shared_data, tmp_path, kind):
    source = shared_data / "cifar10" / "cifar-10-subset-bin"
    archive = official_tarball(tmp_path, source, kind)
    run_prep("cifar10", "--source", archive, "--out", tmp_path / "out", "--no-verify")
    parts = [records(f) for f in sorted(source.glob("data_batch_*.bin"))]
    train = open_shards(tmp_path / "out", "train")
    np.testing.assert_array_equal(all_images(train), np.concatenate([p[0] for p in parts]))
    np.testing.assert_array_equal(train.labels, np.concatenate([p[1] for p in parts]))
    test_images, test_labels = records(source / "test_batch.first1017.bin")
    np.testing.assert_array_equal(all_images(open_shards(tmp_path / "out", "test")), test_images)
    np.testing.assert_array_equal(open_shards(tmp_path / "out", "test").labels, test_labels)


def test_cifar_limit_keeps_the_first_images_of_each_class(shared_data, tmp_path):
    run_prep("cifar10", "--source", shared_data / "cifar10" / "cifar-10-subset-bin", "--out",
             tmp_path, "--limit", "20")
    assert np.bincount(open_shards(tmp_path, "train").labels).tolist() == [20] * 10


def test_imagenet_sample_class_indices_grayscale_and_val(shared_data, tmp_path):
    source = shared_data / "imagenet_sample"
    run_prep("imagenet", "--source", source, "--out", tmp_path, "--storage", "raw")
    for split, per_class in (("train", 50), ("val", 30)):
        shards = open_shards(tmp_path, split)
        assert shards.n_classes == 1000 and shards.image_shape == (3, 224, 224)
        assert shards.count == 10 * per_class and not shards.skipped
        assert np.bincount(shards.labels)[sorted(IMAGENET_INDEX.values())].tolist() == \
            [per_class] * 10
        files = sorted((IMAGENET_INDEX[p.parent.name], p) for p in (source / split).glob("*/*"))
        np.testing.assert_array_equal(shards.labels, [label for label, _ in files])
        np.testing.assert_array_equal(all_images(shards), np.stack([decode(p) for _, p in files]))
    rows = [line.split("\t") for line in (source / "MANIFEST.tsv").read_text().splitlines()]
    gray = [row[0] for row in rows if row[4] == "L" and not row[0].startswith("fullres")]
    assert len(gray) > 0


def test_imagenet_flat_val_with_ground_truth_file(shared_data, tmp_path):
    source = shared_data / "imagenet_sample"
    root = tmp_path / "ilsvrc"
    (root / "val").mkdir(parents=True)
    lines = []
    for path in sorted((source / "val").glob("*/*.JPEG")):
        shutil.copy(path, root / "val" / path.name)
        lines.append(f"{path.name} {path.parent.name}")
    (root / "val_labels.txt").write_text("\n".join(lines) + "\n")
    run_prep("imagenet", "--source", root, "--out", tmp_path / "out", "--resize", "64",
             "--crop", "56")
    val = open_shards(tmp_path / "out", "val")
    assert val.image_shape == (3, 56, 56) and val.count == 300
    expected = sorted((IMAGENET_INDEX[line.split()[1]], line.split()[0]) for line in lines)
    np.testing.assert_array_equal(val.labels, [label for label, _ in expected])
    assert all_images(val).shape == (300, 3, 56, 56)
