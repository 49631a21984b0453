"""Failures a user meets outside the happy path (issue 25): two writers on one directory, workers
left behind by a killed parent, I/O errors, bad prep options, a prep resumed with other options,
a run resumed from elsewhere, SIGTERM, damaged shard content. Each ends in one line (or is
survived), and nothing already written is lost. Concurrency is tested with real processes."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from lcengine import checkpoint
from lcengine.cli import main
from lcengine.data.shards import resolve_source

REPO = Path(__file__).resolve().parents[1]
LCENGINE = [sys.executable, "-c", "from lcengine.cli import main; main()"]
TINY = ["--width", "0.25", "--limit-train", "320", "--limit-test", "200",
        "--train-eval-images", "200"]
TENCH, SPRINGER = "n01440764", "n02102040"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result, *fragments, code=1):
    lines = result.output.strip().splitlines()
    assert result.exit_code == code, result.output
    assert lines and lines[-1].startswith("Error: ") and "Traceback" not in result.output, \
        result.output
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    return lines[-1]


def spawn(*args, **kwargs):
    return subprocess.Popen(LCENGINE + [str(a) for a in args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def wait_for(condition, seconds=60.0, what="condition"):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def lock_holder(directory: Path) -> str:
    try:
        return (directory / ".lock").read_text()
    except FileNotFoundError:
        return ""


def mini_copy(tmp_path, name="mini") -> Path:
    """The embedded MNIST subset as a prepared directory of its own (dataset mnist)."""
    shutil.copytree(resolve_source("mnist-mini"), tmp_path / name)
    return tmp_path / name


@pytest.fixture
def imagenet_source(tmp_path):
    """ImageNet layout, two classes: 240 train and 16 val JPEGs of 80x72 noise."""
    root = tmp_path / "imagenet-src"
    for split, per_class in (("train", 120), ("val", 8)):
        for wnid in (TENCH, SPRINGER):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                buffer = io.BytesIO()
                Image.effect_noise((80, 72), 40 + i % 50).convert("RGB").save(buffer, "JPEG")
                (folder / f"{wnid}_{i}.JPEG").write_bytes(buffer.getvalue())
    return root


def prep_args(source, out, *extra):
    return ["prep", "imagenet", "--source", source, "--out", out, "--storage", "raw",
            "--resize", "64", "--crop", "64", *extra]


# --- 1. one writer per directory ---------------------------------------------------------------
def stopped_holder(args, directory: Path):
    """A real lcengine process started with `args`, frozen (SIGSTOP) once it holds `directory`."""
    process = spawn(*args)
    try:
        wait_for(lambda: lock_holder(directory).startswith(f"{process.pid} ") or
                 process.poll() is not None, what=f"{directory}/.lock")
    except AssertionError:
        process.kill()
        raise
    assert process.poll() is None, process.stdout.read()
    process.send_signal(signal.SIGSTOP)
    return process


def test_resume_while_training_and_two_resumes_are_refused_naming_the_pid(tmp_path):
    run = tmp_path / "run"
    training = stopped_holder(["train", "--out", run, "--epochs", "50", *TINY], run)
    try:
        one_line_error(invoke("train", "--resume", run),
                       f"{run}: in use by another lcengine process (PID {training.pid}, "
                       "lcengine train)")
        training.send_signal(signal.SIGCONT)
        wait_for(lambda: (run / "checkpoints" / "e00000-p0-b0000000" / "MANIFEST.json").exists(),
                 what="the first checkpoint")
    finally:
        training.kill()
        training.communicate()
    # the kill released the lock: a resume may start, and a second resume is refused
    resuming = stopped_holder(["train", "--resume", run, "--epochs", "50"], run)
    try:
        one_line_error(invoke("train", "--resume", run, "--epochs", "1"),
                       f"(PID {resuming.pid}, lcengine train --resume)")
    finally:
        resuming.kill()
        resuming.communicate()
    done = checkpoint.load(checkpoint.latest(run)[0])["position"]["epoch"]
    result = invoke("train", "--resume", run, "--epochs", done + 1)
    assert result.exit_code == 0, result.output
    records = (run / "metrics.jsonl").read_text().splitlines()
    epochs = [json.loads(line)["epoch"] for line in records]
    assert epochs == list(range(1, done + 2))
    assert not (run / ".lock").exists()


def test_two_trainings_on_one_new_out_one_runs_one_is_refused(tmp_path):
    """The first is frozen just after it found --out free; the second then takes it."""
    run = tmp_path / "run"
    args = ["train", "--out", run, "--epochs", "1", *TINY]
    first = spawn(*args)
    try:
        for line in first.stdout:
            if line.startswith("# lcengine"):     # printed once --out was found not to exist
                break
        first.send_signal(signal.SIGSTOP)
        second = spawn(*args)
        outputs = {"second": second.communicate(timeout=300)[0]}
    finally:
        first.send_signal(signal.SIGCONT)
    outputs["first"] = first.communicate(timeout=300)[0]
    codes = {"first": first.returncode, "second": second.returncode}
    assert sorted(codes.values()) == [0, 1], outputs
    failed = outputs["first" if codes["first"] else "second"]
    assert "Traceback" not in failed, failed
    last = failed.strip().splitlines()[-1]
    assert last.startswith(f"Error: {run}") and ("--resume" in last or "PID" in last), failed
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_two_preps_into_one_out_the_second_is_refused(imagenet_source, tmp_path):
    out = tmp_path / "out"
    first = stopped_holder(prep_args(imagenet_source, out, "--workers", "1"), out)
    try:
        result = CliRunner().invoke(main, [str(a) for a in prep_args(imagenet_source, out)])
        one_line_error(result, f"{out}: in use by another lcengine process (PID {first.pid}, "
                               "lcengine prep)")
    finally:
        first.send_signal(signal.SIGCONT)
    output = first.communicate(timeout=300)[0]
    assert first.returncode == 0, output
    assert "val: 16 images" in output and not (out / ".lock").exists()


# --- 2. no orphaned workers -----------------------------------------------------------------
def children() -> dict[int, int]:
    """{pid: parent pid} of every live (not zombie) process, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
            if state != "Z":
                found[int(entry.name)] = int(ppid)
    return found


def descendants(pid: int) -> set[int]:
    table, found, frontier = children(), set(), {pid}
    while frontier:
        frontier = {child for child, parent in table.items() if parent in frontier} - found
        found |= frontier
    return found


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def assert_kill_9_leaves_no_process(process, at_least: int):
    """Once `process` has `at_least` descendants, SIGKILL it: none of them may outlive it."""
    wait_for(lambda: len(descendants(process.pid)) >= at_least or process.poll() is not None,
             what=f"{at_least} worker processes")
    left = descendants(process.pid)
    assert process.poll() is None and len(left) >= at_least, process.stdout.read()
    process.kill()
    process.wait()
    process.stdout.close()          # an orphan may hold the pipe open: no reading to its end
    deadline = time.time() + 5
    while left & set(children()) and time.time() < deadline:
        time.sleep(0.05)
    orphans = left & set(children())
    for pid in orphans:             # do not leave them to the machine when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not orphans, f"{len(orphans)} processes outlived their parent"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_killed_training_leaves_no_worker_behind(tmp_path):
    process = spawn("train", "--out", tmp_path / "run", "--epochs", "50", "--workers", "2", *TINY)
    assert_kill_9_leaves_no_process(process, at_least=3)   # 2 workers and a resource tracker


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_killed_prep_leaves_no_worker_behind(imagenet_source, tmp_path):
    process = spawn(*prep_args(imagenet_source, tmp_path / "out", "--workers", "2"))
    assert_kill_9_leaves_no_process(process, at_least=3)


# --- 4. validation ------------------------------------------------------------------------------
@pytest.mark.parametrize("option, value, words", [
    ("--limit", "0", "must be >= 1"), ("--limit", "-3", "must be >= 1"),
    ("--shard-mb", "0", "must be a number > 0"), ("--shard-mb", "-1", "must be a number > 0"),
    ("--jpeg-quality", "200", "must be in 1..95"), ("--jpeg-quality", "0", "must be in 1..95"),
    ("--workers", "-1", "must be >= 0"),
])
def test_bad_prep_option_is_one_line(tmp_path, option, value, words):
    result = CliRunner().invoke(main, ["prep", "cifar10", "--source", str(tmp_path / "src"),
                                       "--out", str(tmp_path / "out"), option, value])
    one_line_error(result, f"{option} {value}: {words}")
    assert not (tmp_path / "out").exists()


def shard_set(directory: Path, dataset="mnist", shape=(1, 28, 28), counts=(64, 32)) -> Path:
    """A prepared set of random images, made by the prep writer (one split may be empty)."""
    import numpy as np

    from data_prep.plan import Plan, Split
    from data_prep.writer import prepare
    rng = np.random.default_rng(0)
    splits = []
    for name, count in zip(("train", "test"), counts):
        images = rng.integers(0, 256, (count,) + shape, np.uint8)
        splits.append(Split(name, range(count), np.arange(count) % 10, images.__getitem__))
    plan = Plan(dataset, [str(k) for k in range(10)], shape, "raw", {}, splits)
    prepare(plan, directory, shard_bytes=2**20, compress=False, workers=1, strict=True)
    return directory


@pytest.mark.parametrize("counts, split", [((64, 0), "test"), ((0, 32), "train")])
def test_training_on_an_empty_split_is_one_line(tmp_path, counts, split):
    data = shard_set(tmp_path / "data", counts=counts)
    one_line_error(invoke("train", "--dataset", "mnist", "--data", data, "--out",
                          tmp_path / "run", *TINY), f"{data}: split {split} holds no images")
    assert not (tmp_path / "run").exists()


# --- 6. resume from anywhere ------------------------------------------------------------------
def test_relative_data_is_stored_absolute_and_resume_takes_moved_data(tmp_path, monkeypatch):
    mini_copy(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "--dataset", "mnist", "--data", "mini", "--out", "run",
                    "--epochs", "1", *TINY)
    assert result.exit_code == 0, result.output
    assert f'data = "{tmp_path / "mini"}"' in (tmp_path / "run" / "config.toml").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (tmp_path / "mini").rename(tmp_path / "moved")
    one_line_error(invoke("train", "--resume", tmp_path / "run", "--epochs", "2"),
                   f"{tmp_path / 'mini'}: the run's shards are not there any more",
                   "--data DIR")
    one_line_error(invoke("train", "--resume", tmp_path / "run", "--epochs", "2", "--data",
                          shard_set(tmp_path / "cifar", "cifar10", (3, 32, 32))),
                   "holds 'cifar10' shards, but --dataset is mnist")
    one_line_error(invoke("train", "--resume", tmp_path / "run", "--epochs", "2", "--data",
                          shard_set(tmp_path / "small", shape=(1, 14, 14))),
                   "has shape", "the data's image shape or classes differ")
    result = invoke("train", "--resume", tmp_path / "run", "--epochs", "2", "--data",
                    "../moved")
    assert result.exit_code == 0 and "epoch 2/2" in result.output, result.output
    assert f'data = "{tmp_path / "moved"}"' in (tmp_path / "run" / "config.toml").read_text()


# --- 7. SIGTERM -----------------------------------------------------------------------------------
def test_sigterm_checkpoints_where_the_run_stands(tmp_path):
    run = tmp_path / "run"
    process = spawn("train", "--out", run, "--epochs", "50", "--limit-train", "6400",
                    "--limit-test", "200", "--train-eval-images", "200")
    for line in process.stdout:
        if line.startswith("epoch 1/50"):
            break
    time.sleep(0.1)                 # into epoch 2 (200 batches, ~0.5 s)
    process.send_signal(signal.SIGTERM)
    try:
        output = process.communicate(timeout=120)[0]
    finally:
        process.kill()
    assert process.returncode == 143, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("Error: terminated (SIGTERM) at epoch 2, forward pass, batch "), output
    assert last.endswith(f"continue with: lcengine train --resume {run}"), output
    kept = checkpoint.latest(run)[0]
    assert kept.name.startswith("e00001-p0-b") and kept.name != "e00001-p0-b0000000"
    assert str(kept) in last


# --- 3. I/O errors ------------------------------------------------------------------------------
def mount_tmpfs(path: Path, options: str) -> None:
    """A small tmpfs at `path` (root only); the test is skipped where it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")


@pytest.fixture
def small_disk(tmp_path):
    """A function mounting a tmpfs of some size (remountable bigger), unmounted after the test."""
    mounted = []

    def mount(size: str, options: str = "") -> Path:
        path = tmp_path / f"disk{len(mounted)}"
        mount_tmpfs(path, f"size={size}" + (f",{options}" if options else ""))
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_during_prep_is_one_line_and_leaves_no_tmp(imagenet_source, small_disk):
    out = small_disk("1m") / "out"
    result = CliRunner().invoke(main, [str(a) for a in prep_args(
        imagenet_source, out, "--shard-mb", "0.25", "--workers", "1")])
    line = one_line_error(result, "cannot write (No space left on device)",
                          "finished shards are kept")
    assert line.startswith(f"Error: {out}/train-0000")
    assert not list(out.glob("*.tmp")) and not (out / "manifest.json").exists()
    from lcengine.data.shard_format import read_shard_attrs
    kept = sorted(out.glob("train-*.h5"))
    assert kept and all(read_shard_attrs(p)["count"] > 0 for p in kept)
    subprocess.run(["mount", "-o", "remount,size=8m", str(out.parent)], check=True)
    result = CliRunner().invoke(main, [str(a) for a in prep_args(
        imagenet_source, out, "--shard-mb", "0.25", "--workers", "1")])
    assert result.exit_code == 0 and "train: 240 images" in result.output, result.output


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, small_disk):
    probe = tmp_path / "probe"
    assert invoke("train", "--out", probe, "--epochs", "1", *TINY).exit_code == 0
    one = sum(p.stat().st_blocks * 512 for p in checkpoint.latest(probe)[0].iterdir())
    disk = small_disk(f"{one * 3 // 2 + 65536}")    # the first checkpoint fits, the next not
    run = disk / "run"
    line = one_line_error(invoke("train", "--out", run, "--epochs", "1", *TINY),
                          "cannot write (No space left on device)",
                          f"continue with: lcengine train --resume {run}")
    assert line.startswith(f"Error: {run / 'checkpoints' / 'e00001-p0-b0000000'}: ")
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["e00000-p0-b0000000"]
    assert checkpoint.problem(run / "checkpoints" / "e00000-p0-b0000000") is None
    assert not [p for p in run.rglob("*") if "tmp" in p.name]
    subprocess.run(["mount", "-o", f"remount,size={one * 4}", str(disk)], check=True)
    result = invoke("train", "--resume", run)
    assert result.exit_code == 0 and "epoch 1/1" in result.output, result.output


@pytest.mark.parametrize("command", ["train", "prep"])
@pytest.mark.parametrize("kind", ["under a file", "/proc", "read-only mount"])
def test_unwritable_out_is_one_line(tmp_path, small_disk, command, kind):
    if kind == "under a file":
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "out"
    elif kind == "/proc":
        out = Path("/proc/lcengine-test/out")
    else:
        out = small_disk("1m", "ro") / "out"
    if command == "train":
        result = invoke("train", "--out", out, "--epochs", "1", *TINY)
    else:
        result = CliRunner().invoke(main, ["prep", "mnist", "--source", str(tmp_path),
                                           "--out", str(out)])
    one_line_error(result, f"{out}: cannot write (", "choose another --out")


def damage(shard: Path, offset: int) -> None:
    """Flip one byte of the HDF5 metadata; the size, hence the manifest's check, is unchanged."""
    data = bytearray(shard.read_bytes())
    data[offset] ^= 0x55
    shard.write_bytes(data)


@pytest.mark.parametrize("offset", [200, -1021])   # an object header; the attribute heap
def test_damaged_shard_metadata_is_a_data_error_in_train_and_eval(tmp_path, offset):
    data = mini_copy(tmp_path)
    run = tmp_path / "run"
    assert invoke("train", "--dataset", "mnist", "--data", data, "--out", run, "--epochs", "1",
                  *TINY).exit_code == 0
    damage(data / "test-00000.h5", offset)
    words = (f"{data / 'test-00000.h5'}: not a readable HDF5 shard, truncated or damaged",)
    one_line_error(invoke("eval", run), *words)
    one_line_error(invoke("train", "--dataset", "mnist", "--data", data, "--out",
                          tmp_path / "again", *TINY), *words)


def rewrite_consistently(checkpoint_dir: Path, name: str, content: bytes) -> None:
    """Replace a checkpoint file and its manifest entry: the manifest matches, the content not."""
    (checkpoint_dir / name).write_bytes(content)
    manifest = json.loads((checkpoint_dir / "MANIFEST.json").read_text())
    manifest["files"][name] = checkpoint._describe(checkpoint_dir / name)
    (checkpoint_dir / "MANIFEST.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name, content", [("state.json", b"{}"), ("arrays.npz", b"not a zip"),
                                           ("state.json", b"[1, 2]")])
def test_checkpoint_with_consistent_manifest_but_bad_content_falls_back(tmp_path, name, content):
    run = tmp_path / "run"
    assert invoke("train", "--out", run, "--epochs", "2", *TINY).exit_code == 0
    newest = checkpoint.latest(run)[0]
    rewrite_consistently(newest, name, content)
    result = invoke("eval", run)
    assert result.exit_code == 0, result.output
    assert f"{newest}: skipped, " in result.output and "(epoch 1," in result.output
    result = invoke("train", "--resume", run)
    assert result.exit_code == 0 and "resuming" in result.output, result.output
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] \
        == [1, 2]


# --- 5. a resumed prep never mixes layouts ---------------------------------------------------
def snapshot(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def test_rerun_with_other_settings_says_what_differs_and_changes_nothing(imagenet_source,
                                                                        tmp_path):
    out = tmp_path / "out"
    args = prep_args(imagenet_source, out, "--shard-mb", "0.25", "--workers", "1")
    assert CliRunner().invoke(main, [str(a) for a in args]).exit_code == 0
    finished = snapshot(out)
    result = CliRunner().invoke(main, [str(a) for a in args + ["--shard-mb", "0.5"]])
    one_line_error(result, f"{out}: holds a finished shard set made with other settings "
                           "(--shard-mb 0.25 before, 0.5 now)", "delete it or choose another")
    assert "wrote" not in result.output and snapshot(out) == finished
    (out / "manifest.json").unlink()            # as if the prep had been interrupted
    interrupted = snapshot(out)
    result = CliRunner().invoke(main, [str(a) for a in args + ["--gzip", "--limit", "50"]])
    one_line_error(result, f"{out}: holds an unfinished prep with other settings (--gzip off "
                           "before, on now; --limit not given before, 50 now; --source: other "
                           "source files)", f"delete {out} to start over")
    assert snapshot(out) == interrupted
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0 and snapshot(out) == finished, result.output


# --- 8. shard content checksums ------------------------------------------------------------------
def flip_a_pixel(shard: Path) -> None:
    import h5py
    with h5py.File(shard, "r") as f:
        offset = f["images"].id.get_offset()
    data = bytearray(shard.read_bytes())
    data[offset + 1000] ^= 0x01
    shard.write_bytes(data)


def test_flipped_pixel_is_found_by_verify_and_at_load(tmp_path):
    data = shard_set(tmp_path / "data")
    result = CliRunner().invoke(main, ["prep", "--verify", str(data)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{data}: 2 shards intact (size, header and SHA-256 as the " \
                            "manifest lists)\n"
    flip_a_pixel(data / "train-00000.h5")
    result = CliRunner().invoke(main, ["prep", "--verify", str(data)])
    assert result.exit_code == 1 and result.output.splitlines() == [
        f"{data / 'train-00000.h5'}: content differs from the checksum in the manifest "
        "(damaged); prepare the data again",
        f"Error: {data}: 1 of 2 shards damaged (listed above); prepare the data again"]
    one_line_error(invoke("train", "--dataset", "mnist", "--data", data, "--out",
                          tmp_path / "run", *TINY),
                   f"{data / 'train-00000.h5'}: content differs from the checksum")


def test_embedded_subset_lists_its_checksums():
    result = CliRunner().invoke(main, ["prep", "--verify", str(resolve_source("mnist-mini"))])
    assert result.exit_code == 0 and "2 shards intact" in result.output, result.output


def test_sigterm_to_the_whole_job_with_workers_still_checkpoints(tmp_path):
    """Slurm's time limit signals every process of the job step, the workers too."""
    run = tmp_path / "run"
    process = spawn("train", "--out", run, "--epochs", "50", "--workers", "2", "--limit-train",
                    "640", "--limit-test", "200", "--train-eval-images", "200",
                    start_new_session=True)
    try:
        for line in process.stdout:
            if line.startswith("epoch 1/50"):
                break
        time.sleep(0.3)
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 143, output
    assert output.strip().splitlines()[-1].startswith("Error: terminated (SIGTERM) at epoch 2, "),\
        output
    assert checkpoint.latest(run)[0].name.startswith("e00001-p0-b")


def test_a_worker_killed_mid_run_is_one_line_and_nothing_hangs(tmp_path):
    """As when the kernel's OOM killer picks a worker: the pool stops its other workers (they
    obey their parent's SIGTERM), and the run ends with one line."""
    process = spawn("train", "--out", tmp_path / "run", "--epochs", "50", "--workers", "2",
                    "--limit-train", "6400", "--limit-test", "200", "--train-eval-images", "200")
    try:
        def workers():
            return [pid for pid in descendants(process.pid)
                    if b"spawn_main" in command_line(pid)]
        # A worker of the one-batch pool that reads the alignment minibatch may be killed as
        # that pool closes, which costs the run nothing; so kill one worker of whichever pool is
        # at work until one that a pass needs goes (the first epoch's works for many seconds).
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            wait_for(lambda: process.poll() is not None or len(workers()) >= 2,
                     what="two workers")
            for pid in workers()[:1]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:          # its pool closed meanwhile
                    pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                continue
        output = process.communicate(timeout=10)[0]
    finally:
        process.kill()
    assert process.returncode == 1, output
    assert output.strip().splitlines()[-1].startswith("Error: ")
    assert "a data worker process died" in output and "Traceback" not in output, output
