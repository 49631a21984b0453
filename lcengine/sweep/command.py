"""`lcengine sweep`: the click command; the work is in study.py, worker.py and report.py.

Imported by cli.py, below its `config_options` (which this module uses): import lcengine.cli,
not this module, to get the command."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from ..cli import USER_ERRORS, _exit, config_options
from ..config import coerce, read_preset, read_toml, resolve
from .space import load_space, shipped_spaces
from .study import PRUNERS, Definition, SweepError, open_study

#: options that define a sweep; a worker given none of them joins the sweep saved at ROOT
DEFINING = ("preset", "config_file", "space", "samples", "sample_seed", "prune", "prune_after")


@click.command()
@config_options
@click.option("--preset", metavar="NAME", help="train options from lcengine/presets/NAME.toml")
@click.option("--config", "config_file", metavar="FILE", help="train options from a TOML file")
@click.option("--space", metavar="NAME|FILE", help="the search space: a TOML file, or one of "
              f"{', '.join(sorted(shipped_spaces()))}  [default: table4, the paper's Table 4]")
@click.option("--samples", type=click.IntRange(min=1), help="configurations to draw and train "
              "(the paper: 60)")
@click.option("--sample-seed", type=click.IntRange(min=0), help="seed of the configurations' "
              "draw  [default: 0]")
@click.option("--prune", type=click.Choice(PRUNERS), help="stop bad trials early: median "
              "rule or successive halving  [default: none]")
@click.option("--prune-after", type=click.IntRange(min=1), help="epochs every trial trains "
              "before it may be pruned  [default: 1]")
@click.option("--root", metavar="DIR", help="the sweep's directory: its study "
              "(sweep.journal) and one run directory per trial")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="trials this worker trains at once")
@click.option("--storage", metavar="URL", help="an Optuna storage URL (e.g. postgresql://...) "
              "for the study instead of ROOT/sweep.journal; ROOT must still be one directory "
              "all workers share")
@click.option("--study", "study_name", metavar="NAME", help="the study's name in --storage")
@click.option("--report", "report_root", metavar="ROOT", help="only report the sweep at ROOT: "
              "ranked trials, best preset, figure")
@click.option("--presets", type=click.IntRange(min=1), default=1, show_default=True,
              help="write the best K finished trials as presets (best.toml, best-2.toml, ...)")
def sweep(preset, config_file, space, samples, sample_seed, prune, prune_after, root, jobs,
          storage, study_name, report_root, presets, **options):
    """Random search of a rule's hyper-parameters, as the paper chose them (App. 5.3).

    Draws --samples configurations from the space, trains each as a run directory
    ROOT/trial-K, and reports the trials ranked by best test error. Rerun the same command (or
    just `lcengine sweep --root ROOT`) to continue a stopped sweep; start more workers on the
    same ROOT, on this host or others sharing the filesystem, to share the trials.

    Train options (the same as `lcengine train`'s) are given to every trial; one that the space
    searches is then fixed instead. Needs Optuna: pip install 'lcengine[sweep]'."""
    if importlib.util.find_spec("optuna") is None:
        raise _exit("lcengine sweep needs Optuna: pip install 'lcengine[sweep]'")
    from .report import write_report
    from .worker import SweepInterrupted, Worker

    given = {name: value for name, value in options.items() if value is not None}
    defining = {"preset": preset, "config_file": config_file, "space": space, "samples": samples,
                "sample_seed": sample_seed, "prune": prune, "prune_after": prune_after}
    try:
        if report_root is not None:
            if given or any(v is not None for v in defining.values()) or root:
                raise SweepError("--report takes only ROOT (and --storage, --study)")
            root_dir = Path(report_root)
            if storage is None and not (root_dir / "sweep.journal").is_file():
                raise SweepError(f"{root_dir}: no sweep there (no sweep.journal)")
            write_report(open_study(root_dir, storage, study_name, None, click.echo), click.echo,
                         presets)
            return
        if root is None:
            raise SweepError("--root DIR is needed: the sweep's directory")
        definition = None
        if given or any(v is not None for v in defining.values()):
            definition = define(given, **defining)
        opened = open_study(Path(root), storage, study_name, definition, click.echo)
        check_here(opened.definition)
        Worker(opened, jobs, click.echo).run()
        write_report(opened, click.echo, presets)
    except SweepInterrupted as err:
        raise _exit(str(err), 130) from None
    except USER_ERRORS as err:
        raise _exit(str(err)) from None


def define(given: dict, preset, config_file, space, samples, sample_seed, prune,
           prune_after) -> Definition:
    """The sweep's definition from the options: train options from preset < config file <
    space's fixed values < command line; the space less what the command line fixes."""
    if "out" in given:
        raise SweepError("--out: the sweep names its trials' run directories (ROOT/trial-K)")
    if samples is None:
        raise SweepError("--samples N is needed to define a sweep (the paper drew 60)")
    files = {}
    if preset is not None:
        files |= read_preset(preset)
    if config_file is not None:
        files |= read_toml(Path(config_file))
    command_line = {name: coerce(name, value, "--" + name.replace("_", "-"))
                    for name, value in given.items()}
    algo = command_line.get("algo", files.get("algo"))
    if algo is None:
        raise SweepError("--algo is needed: the rule whose hyper-parameters are searched")
    searched = load_space(space, algo).without(command_line)
    fixed = {**files, **searched.fixed, **command_line}
    definition = Definition(fixed, searched, samples, sample_seed or 0, prune or "none",
                            prune_after or 1)
    check_here(definition)
    return definition


def check_here(definition: Definition) -> None:
    """Refuse, before any trial starts, what `lcengine train` would refuse on this host (a bad
    combination, data missing here), rather than fail every trial in turn."""
    first = definition.space.draw(1, definition.sample_seed)[0]
    resolve([("train options", definition.fixed), (definition.space.label, first)])
