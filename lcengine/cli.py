"""`lcengine`: train, eval, report, info — and prep (data_prep), bench (lcengine.bench) and sweep
(lcengine.sweep).

Every `train` option is a field of `config.TrainConfig`; the options are generated from the
fields, so the two cannot drift apart. Options arrive as strings and are checked by the same
code that checks config files, so a bad value reads the same wherever it came from. Every
failure the user can fix is one line (click.ClickException), naming the option or file.
"""

from __future__ import annotations

from .ops.cpu.host_threads import blas_threads_sleep_soon

blas_threads_sleep_soon()           # first: OpenBLAS reads its idle timeout when NumPy loads it

import os
import time
from dataclasses import fields
from pathlib import Path

import click

from . import __version__, checkpoint, datahome, distributed, storage
from . import train as training
from .bench import bench
from .backend import BackendError, get_backend
from .config import ConfigError, TrainConfig, coerce, presets, read_preset, read_toml, resolve
from .data import DataError
from .nets import ARCHS, describe_arch
from .rules import RULES

#: errors whose message is the whole story for the user
USER_ERRORS = (ConfigError, DataError, BackendError, checkpoint.CheckpointError,
               distributed.DistributedError, storage.StorageError)


class _Commands(click.Group):
    """The commands, with `prep` imported from data_prep only when it is asked for: lcengine
    and data_prep do not import each other at package level."""

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), "prep"])

    def get_command(self, ctx, name):
        if name == "prep":
            from data_prep.cli import prep
            return prep
        return super().get_command(ctx, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lcengine")
def main():
    """Deep nets trained with BP, FA, DFA and the target-propagation family (Bartunov et al.
    2018), and the sign-symmetry and Kolen-Pollack rules, every pass written by hand on
    NumPy/CuPy."""


def config_options(command):
    """One click option per TrainConfig field, all strings (checked by config.coerce)."""
    for f in reversed(fields(TrainConfig)):
        meta = f.metadata
        choices = meta["choices"]
        metavar = "[" + "|".join(choices) + "]" if choices else {int: "INT", float: "FLOAT"}.get(
            meta["kind"], "DIR")
        default = f"  [default: {f.default}]" if f.default is not None else ""
        command = click.option("--" + f.name.replace("_", "-"), f.name, metavar=metavar,
                               help=meta["help"] + default)(command)
    return command


@main.command()
@config_options
@click.option("--preset", metavar="NAME", help="start from lcengine/presets/NAME.toml "
              "(see `lcengine info`)")
@click.option("--config", "config_file", metavar="FILE", help="TOML file of option values "
              "(keys = option names); command-line options win")
@click.option("--resume", metavar="RUN_DIR", help="continue a run from its newest complete "
              "checkpoint, bit for bit (only --epochs, and --data if the shards moved, may be "
              "given with it)")
def train(preset, config_file, resume, **options):
    """Train a network; each epoch: train, evaluate, checkpoint, append to metrics.jsonl.

    Defaults: BP on the paper's MNIST FC net, the embedded MNIST subset; optimiser and rule
    hyper-parameters from the paper's Table 5 for the chosen setting.

    Under `mpiexec -n K`, K data-parallel processes share every minibatch (--batch-size is the
    whole minibatch), with the same result as one process; rank 0 prints and writes.

    A program that runs this command in-process (a sweep's trial) may pass
    `obj={"after_epoch": f}`: train.start's per-epoch callback."""
    given = {name: value for name, value in options.items() if value is not None}
    after_epoch = (click.get_current_context().obj or {}).get("after_epoch")
    run_dir = Path(resume) if resume is not None else None
    try:
        group = distributed.world()
    except distributed.DistributedError as err:
        raise _exit(str(err)) from None
    echo = click.echo if group.root else _quiet
    try:
        if resume is not None:
            history = _resume(run_dir, preset, config_file, given, echo, after_epoch)
        else:
            config = _fresh_config(preset, config_file, given, group, echo)
            run_dir = Path(config.out)
            history = training.start(config, run_dir, echo=echo, after_epoch=after_epoch)
    except training.Interrupted as err:                 # every process stops at the same step
        raise (_exit(str(err), err.exit_code) if group.root
               else click.exceptions.Exit(err.exit_code)) from None
    except training.Diverged as err:                    # every process sees the same losses
        if not group.root:
            raise click.exceptions.Exit(1) from None
        kept = checkpoint.latest(run_dir)[0]
        raise _exit(f"stopped: {err}; the last good checkpoint {kept} is kept") from None
    except USER_ERRORS as err:
        if group.size > 1:              # maybe this process alone: end them all, not a hang
            click.echo(f"Error: rank {group.rank}: {err}", err=True)
            group.abort(1)
        raise _exit(str(err)) from None
    last, best = history[-1], min(history, key=lambda r: r["test_error"])
    echo(f"done: final test error {last['test_error']:.2f}%, best {best['test_error']:.2f}% "
               f"(epoch {best['epoch']}); run directory {run_dir}")


def _quiet(*args, **kwargs) -> None:
    """The echo of data-parallel processes other than rank 0."""


def _fresh_config(preset, config_file, given, group, echo) -> TrainConfig:
    """Resolve preset < config file < command line, pick the run directory (rank 0's, on every
    process), print the result."""
    layers = []
    if preset is not None:
        layers.append((f"preset {preset}", read_preset(preset)))
    if config_file is not None:
        layers.append((config_file, read_toml(Path(config_file))))
    layers.append(("command line", {name: coerce(name, value, "--" + name.replace("_", "-"))
                                    for name, value in given.items()}))
    config, notes = resolve(layers)
    stamp = group.broadcast(time.strftime("%Y%m%d-%H%M%S"))
    run_dir = Path(config.out or Path("runs") / f"{config.setting()}-{stamp}")
    if group.broadcast(run_dir.exists()):
        raise ConfigError(f"{run_dir}: run directory exists; continue it with --resume "
                          f"{run_dir}, or choose another --out")
    config.out = str(run_dir)
    if config.data is not None:     # so that --resume works from any directory
        config.data = os.path.abspath(config.data)
    get_backend(config.device, config.kernels)          # fail before anything is written
    echo(f"# lcengine {__version__}: resolved configuration (saved as {run_dir / training.CONFIG})"
         + (f", {group.size} data-parallel processes" if group.size > 1 else ""))
    for note in notes:
        echo(f"# {note}")
    echo(config.to_toml(), nl=False)
    return config


def _resume(run_dir: Path, preset, config_file, given, echo, after_epoch) -> list[dict]:
    others = sorted(set(given) - {"epochs", "data"}) + [o for o, v in (("preset", preset),
                                                                       ("config", config_file))
                                                        if v]
    if others:
        raise ConfigError(f"--resume takes the configuration from the checkpoint; only --epochs "
                          f"and --data (shards that moved) may be given with it, not "
                          f"--{others[0].replace('_', '-')}")
    epochs = coerce("epochs", given["epochs"], "--epochs") if "epochs" in given else None
    return training.resume(run_dir, epochs, echo=echo, data=given.get("data"),
                           after_epoch=after_epoch)


def _exit(message: str, code: int = 1) -> click.ClickException:
    err = click.ClickException(message)
    err.exit_code = code
    return err


@main.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--split", help="train, or the dataset's evaluation split (test; ImageNet: val) "
              "[default: the evaluation split]")
@click.option("--data", metavar="DIR", help="prepared shards, if they moved since training")
@click.option("--limit", type=click.IntRange(min=1), help="only the first N images")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), help="[default: the run's]")
def evaluate(run_dir, split, data, limit, device):
    """Error of a run's newest checkpoint on a dataset split."""
    try:
        state = training.read_checkpoint(Path(run_dir), echo=click.echo)
        config = training.saved_config(state)
        if data is not None:
            config.data = data
        if device is not None:
            config.device = device
        run = training.Run(config)
        run.load_state(state["run"])
        split = split or config.eval_split
        loader = {config.eval_split: run.test_loader, "train": run.train_eval_loader}.get(split)
        if loader is None:
            raise ConfigError(f"--split {split!r}: choose train or {config.eval_split}")
        with training.cpu_threads(config.threads):
            result = run.evaluate(loader, limit)
    except USER_ERRORS as err:
        raise _exit(str(err)) from None
    top5 = f", top-5 error {result['top5_error']:.2f}%" if config.dataset == "imagenet" else ""
    click.echo(f"{run_dir} (epoch {state['position']['epoch']}, {config.setting()}): {split} "
               f"error {result['error']:.2f}%{top5}, loss {result['loss']:.4f}")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--markdown", metavar="FILE", help="also write the table to FILE (--compare: "
              "into FILE's generated block where it has one)")
@click.option("--compare", is_flag=True, help="Table 1 as the runs stand: per (dataset, arch) a "
              "table of every rule beside the paper, error curves and angles to BP as PNGs")
@click.option("--figures", metavar="DIR", help="--compare: where the PNGs go [default: "
              "figures/ beside FILE, else ./figures]")
def report(run_dirs, markdown, compare, figures):
    """Best and final errors of runs beside the paper's; learning curves in RUN_DIR/curves.png,
    per-layer angles (to BP's gradient; feedback B to W) in RUN_DIR/angles.png (--compare: per
    (dataset, arch), and nothing is written into the runs)."""
    from .report import ReportError, angle_curves, curves, read_run, table   # matplotlib: asked

    try:
        runs = [read_run(Path(d)) for d in run_dirs]
        if figures and not compare:
            raise ReportError("--figures: only with --compare")
        if compare:
            from .compare import comparison_report
            click.echo(comparison_report(runs, markdown, figures), nl=False)
            return
    except USER_ERRORS + (ReportError,) as err:
        raise _exit(str(err)) from None
    text = table(runs)
    click.echo(text, nl=False)
    if markdown:
        checkpoint.atomic_write_text(Path(markdown), text)
    for run in runs:
        if run.history:
            click.echo(f"curves: {curves(run)}")
            angles = angle_curves(run)
            if angles:
                click.echo(f"angles: {angles}")


@main.command()
def info():
    """Backend, op faces, architectures with weight counts, rules, presets and the data home."""
    backend = get_backend("cpu")
    click.echo(f"lcengine {__version__}; backend {backend.name}: "
               + ", ".join(f"{family}={face}" for family, face in backend.faces.items()))
    try:
        gpu = get_backend("gpu")
        click.echo("gpu backend: " + ", ".join(f"{f}={face}" for f, face in gpu.faces.items()))
    except BackendError as err:
        click.echo(f"gpu backend: unavailable ({err})")
    click.echo("architectures (weights, biases not counted):")
    for arch in ARCHS:
        rows = describe_arch(arch)
        layers = " → ".join(row.name for row in rows)
        click.echo(f"  {arch:14s} {sum(r.n_weights for r in rows) / 1e6:8.2f}M  {layers}")
    click.echo(f"rules: {', '.join(RULES)}")
    click.echo(f"presets: {', '.join(sorted(presets()))}")
    prepared = datahome.describe_prepared()
    click.echo(f"data home: {datahome.data_home()} ({datahome.home_origin()}); "
               + ("prepared:" if prepared else "nothing prepared yet (lcengine prep DATASET)"))
    for line in prepared:
        click.echo("  " + line)


main.add_command(bench)

from .sweep.command import sweep  # noqa: E402  (it builds on config_options above)

main.add_command(sweep)
