"""Bad inputs: each gives one clear line naming the file, or is skipped and listed; never a
traceback. Also: an interrupted prep finishes on rerun, identical to an uninterrupted one."""

import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from data_prep.cli import prep
from lcengine.data import DataError, open_shards

TENCH, SPRINGER = "n01440764", "n02102040"


def invoke(*args):
    return CliRunner().invoke(prep, [str(a) for a in args] + ["--workers", "1"])


def assert_clean_error(result, *words):
    assert result.exit_code == 1, result.output
    line = result.output.strip()
    assert line.startswith("Error: ") and "\n" not in line and "Traceback" not in line, line
    for word in words:
        assert word in line, line


def write_jpeg(path, mode="RGB", size=(40, 30)):
    color = {"L": 90, "RGB": (200, 30, 60), "CMYK": (10, 200, 30, 0)}[mode]
    Image.new(mode, size, color).save(path, "JPEG")


@pytest.fixture
def odd_imagenet(tmp_path):
    """train/: a good, a truncated, a CMYK, a grayscale and a PNG-named-.JPEG image."""
    tench, springer = tmp_path / "src" / "train" / TENCH, tmp_path / "src" / "train" / SPRINGER
    tench.mkdir(parents=True)
    springer.mkdir()
    write_jpeg(tench / "good.JPEG", size=(60, 40))
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, "JPEG")
    (tench / "truncated.JPEG").write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    write_jpeg(springer / "cmyk.JPEG", mode="CMYK")
    write_jpeg(springer / "gray.JPEG", mode="L")
    Image.new("RGB", (32, 32), (1, 2, 3)).save(springer / "png.JPEG", "PNG")
    return tmp_path / "src"


def test_odd_images_convert_to_rgb_and_a_truncated_one_is_skipped(odd_imagenet, tmp_path):
    result = invoke("imagenet", "--source", odd_imagenet, "--out", tmp_path / "out",
                    "--resize", "32", "--crop", "32", "--storage", "raw")
    assert result.exit_code == 0, result.output
    assert "1 skipped" in result.output
    train = open_shards(tmp_path / "out", "train")
    assert train.count == 4 and train.labels.tolist() == [0, 217, 217, 217]
    assert [s["item"].rsplit("/", 1)[1] for s in train.skipped] == ["truncated.JPEG"]
    images = train.read(np.arange(4))
    assert images.shape == (4, 3, 32, 32)
    assert (images[2] == images[2][:1]).all()                      # gray: R = G = B
    assert images[3, :, 0, 0].tolist() == [1, 2, 3]                 # the PNG, read by content
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["skipped"][0]["item"].endswith("truncated.JPEG")


def test_strict_makes_a_bad_image_an_error(odd_imagenet, tmp_path):
    result = invoke("imagenet", "--source", odd_imagenet, "--out", tmp_path / "out", "--strict",
                    "--resize", "32", "--crop", "32")
    assert_clean_error(result, "truncated.JPEG", "--strict")


def test_empty_class_folder_is_an_error_naming_it(odd_imagenet, tmp_path):
    (odd_imagenet / "train" / "n01443537").mkdir()
    result = invoke("imagenet", "--source", odd_imagenet, "--out", tmp_path / "out")
    assert_clean_error(result, "n01443537", "holds no images")


def test_empty_class_folder_in_an_image_folder_archive(tmp_path):
    (tmp_path / "tree" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "tree" / "train" / "dog").mkdir()
    write_jpeg(tmp_path / "tree" / "train" / "dog" / "0000.jpg", size=(32, 32))
    shutil.make_archive(str(tmp_path / "tree"), "gztar", tmp_path / "tree")
    result = invoke("cifar10", "--source", tmp_path / "tree.tar.gz", "--out", tmp_path / "out")
    assert_clean_error(result, "train/cat", "holds no images")


def test_wrong_checksum_names_the_file_unless_no_verify(shared_data, tmp_path):
    source = tmp_path / "mnist"
    shutil.copytree(shared_data / "mnist", source)
    labels = source / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(labels.read_bytes()))
    data[8] = (data[8] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(data)))
    assert_clean_error(invoke("mnist", "--source", source, "--out", tmp_path / "a"),
                       "t10k-labels-idx1-ubyte.gz", "md5", "--no-verify")
    assert invoke("mnist", "--source", source, "--out", tmp_path / "b", "--no-verify",
                  "--limit", "5").exit_code == 0


def test_truncated_archive_is_one_line(shared_data, tmp_path):
    archive = tmp_path / "cifar-10-jpeg.tar.gz"
    whole = (shared_data / "cifar10" / "cifar-10-jpeg.tar.gz").read_bytes()
    archive.write_bytes(whole[:len(whole) // 8])
    assert_clean_error(invoke("cifar10", "--source", archive, "--out", tmp_path / "out"),
                       str(archive), "truncated or damaged")


def test_truncated_mnist_gzip_with_no_verify(shared_data, tmp_path):
    source = tmp_path / "mnist"
    shutil.copytree(shared_data / "mnist", source)
    images = source / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:100_000])
    assert_clean_error(invoke("mnist", "--source", source, "--out", tmp_path / "out",
                              "--no-verify"), "t10k-images-idx3-ubyte.gz")


def copy_of_mini(tmp_path):
    from lcengine.data.shards import resolve_source
    shutil.copytree(resolve_source("mnist-mini"), tmp_path / "mini")
    return tmp_path / "mini"


def test_shard_cut_in_half_is_named(tmp_path):
    shard = copy_of_mini(tmp_path) / "test-00000.h5"
    shard.write_bytes(shard.read_bytes()[:shard.stat().st_size // 2])
    with pytest.raises(DataError, match=r"test-00000\.h5: \d+ bytes, the manifest says"):
        open_shards(tmp_path / "mini", "test")


def test_shard_of_another_format_version_is_named(tmp_path):
    directory = copy_of_mini(tmp_path)
    with h5py.File(directory / "test-00000.h5", "r+") as f:
        f.attrs["format_version"] = 99
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["splits"]["test"]["shards"][0]["bytes"] = (directory / "test-00000.h5").stat().st_size
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"test-00000\.h5: shard format version 99, this lcengine "
                                        r"reads version 1"):
        open_shards(directory, "test")


def test_foreign_file_in_place_of_a_shard(tmp_path):
    directory = copy_of_mini(tmp_path)
    shard = directory / "test-00000.h5"
    size = shard.stat().st_size
    shard.write_bytes(b"not hdf5".ljust(size, b"\0"))
    with pytest.raises(DataError, match=r"test-00000\.h5: not a readable HDF5 shard"):
        open_shards(directory, "test")


PREP = ("from data_prep.cli import prep; prep(['mnist', '--source', {source!r}, '--out', "
        "{out!r}, '--shard-mb', '0.25'])")


def test_killed_prep_rerun_gives_identical_shards(shared_data, tmp_path):
    source = str(shared_data / "mnist")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run([sys.executable, "-c", PREP.format(source=source, out=str(whole))], check=True,
                   capture_output=True)
    process = subprocess.Popen([sys.executable, "-c", PREP.format(source=source, out=str(killed))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (killed / "train-00020.h5").exists() and time.time() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "manifest.json").exists()
    with pytest.raises(DataError, match="manifest.json: missing"):
        open_shards(killed, "train")
    subprocess.run([sys.executable, "-c", PREP.format(source=source, out=str(killed))], check=True,
                   capture_output=True)
    names = sorted(p.name for p in whole.iterdir())
    assert names == sorted(p.name for p in killed.iterdir()) and len(names) > 100
    for name in names:
        assert (whole / name).read_bytes() == (killed / name).read_bytes(), name


def test_download_resumes_from_a_partial_file_and_checks_md5(shared_data, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(shared_data / "mnist", mirror)
    downloads = tmp_path / "out" / "downloads"
    downloads.mkdir(parents=True)
    name = "train-images-idx3-ubyte.gz"
    (downloads / f"{name}.part").write_bytes((mirror / name).read_bytes()[:1_000_000])
    result = invoke("mnist", "--source", mirror.as_uri() + "/", "--out", tmp_path / "out",
                    "--limit", "3")
    assert result.exit_code == 0, result.output
    assert (downloads / name).read_bytes() == (mirror / name).read_bytes()
    bad = tmp_path / "bad"
    shutil.copytree(mirror, bad)
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    assert_clean_error(invoke("mnist", "--source", bad.as_uri() + "/", "--out", tmp_path / "o2"),
                       "t10k-labels-idx1-ubyte.gz", "md5")
