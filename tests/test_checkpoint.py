"""Checkpoints: a round trip keeps every value exactly; a save cut short or a damaged file never
counts; the newest complete checkpoint wins; old ones are pruned; atomic writes keep old content."""

import json
import os

import numpy as np
import pytest

from lcengine import checkpoint
from lcengine.checkpoint import CheckpointError


def to_numpy(a):
    return np.asarray(a)


def sample_state(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "config": {"algo": "dtp", "lr": 3.08e-4, "limit": None},
        "position": {"epoch": 2, "phase": 1, "batch": 7},
        "rng": np.random.Generator(np.random.PCG64(seed)).bit_generator.state,   # 128-bit ints
        "run": {"forward": {"0.W": rng.standard_normal((5, 3)).astype(np.float32),
                            "0.b": np.zeros(5, np.float32)},
                "optimisers": {"forward": {"t": np.asarray(12, np.int64),
                                           "m.0.W": rng.standard_normal((5, 3))}}},
        "history": [{"epoch": 1, "test_error": 12.5, "info": {"inv.1": (3.0, 2)}}],
        "scalar": np.float32(0.25),
    }


def assert_same(got, want):
    if isinstance(want, dict):
        assert set(got) == set(want)
        for k in want:
            assert_same(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    elif isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    else:
        plain = want.item() if isinstance(want, np.generic) else want
        assert got == want and type(got) is type(plain)


def test_round_trip_is_exact(tmp_path):
    state = sample_state()
    path = checkpoint.save(tmp_path, "e00002-p1-b0000007", state, to_numpy)
    assert sorted(p.name for p in path.iterdir()) == ["MANIFEST.json", "arrays.npz", "state.json"]
    assert checkpoint.latest(tmp_path) == (path, [])
    assert_same(checkpoint.load(path), state)


def test_save_cut_before_manifest_does_not_count(tmp_path, monkeypatch):
    good = checkpoint.save(tmp_path, "e00001-p0-b0000000", sample_state(1), to_numpy)
    real = checkpoint.atomic_write_text

    def killed_at_manifest(path, text):
        if path.name == checkpoint.MANIFEST:
            raise KeyboardInterrupt                           # the process dies right here
        real(path, text)

    monkeypatch.setattr(checkpoint, "atomic_write_text", killed_at_manifest)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, "e00002-p0-b0000000", sample_state(2), to_numpy)
    path, skipped = checkpoint.latest(tmp_path)
    assert path == good
    assert len(skipped) == 1 and "e00002" in skipped[0] and "no manifest" in skipped[0]
    assert_same(checkpoint.load(path), sample_state(1))


def test_damaged_file_is_skipped_for_the_previous_one(tmp_path):
    good = checkpoint.save(tmp_path, "e00001-p0-b0000000", sample_state(1), to_numpy)
    bad = checkpoint.save(tmp_path, "e00002-p0-b0000000", sample_state(2), to_numpy)
    data = (bad / "arrays.npz").read_bytes()
    (bad / "arrays.npz").write_bytes(data[:-10] + bytes(10))         # same size, other bytes
    path, skipped = checkpoint.latest(tmp_path)
    assert path == good and "does not match the manifest" in skipped[0]
    with pytest.raises(CheckpointError, match="arrays.npz does not match"):
        checkpoint.load(bad)


def test_keeps_the_newest_complete_ones(tmp_path):
    tags = [f"e{e:05d}-p0-b0000000" for e in range(5)]
    for e, tag in enumerate(tags):
        checkpoint.save(tmp_path, tag, sample_state(e), to_numpy)
    kept = sorted(p.name for p in checkpoint.checkpoints_dir(tmp_path).iterdir())
    assert kept == tags[-checkpoint.KEEP:]


def test_rewriting_a_tag_replaces_it_whole(tmp_path):
    tag = "e00001-p0-b0000000"
    checkpoint.save(tmp_path, tag, sample_state(1), to_numpy)
    path = checkpoint.save(tmp_path, tag, sample_state(2), to_numpy)
    assert_same(checkpoint.load(path), sample_state(2))


def test_no_checkpoint_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        checkpoint.latest(tmp_path)
    with pytest.raises(CheckpointError, match="no such run directory"):
        checkpoint.latest(tmp_path / "absent")


def test_atomic_write_keeps_old_content_when_cut(tmp_path, monkeypatch):
    target = tmp_path / "metrics.jsonl"
    checkpoint.atomic_write_text(target, "old\n")

    def replace_fails(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", replace_fails)
    with pytest.raises(OSError):
        checkpoint.atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["metrics.jsonl"]                     # no temporary left


def test_manifest_lists_sizes_and_hashes(tmp_path):
    path = checkpoint.save(tmp_path, "e00000-p0-b0000000", sample_state(), to_numpy)
    manifest = json.loads((path / checkpoint.MANIFEST).read_text())
    for name in checkpoint.FILES:
        assert manifest["files"][name]["bytes"] == (path / name).stat().st_size
        assert len(manifest["files"][name]["sha256"]) == 64
