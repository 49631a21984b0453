"""`lcengine sweep --report ROOT`: the trials ranked by best test error (ROOT/sweep.md), the
best finished trial's configuration as a preset (ROOT/best.toml, for `lcengine train --config`;
with --presets K also best-2.toml ... best-K.toml) and the best test error of every trial
against each searched hyper-parameter (ROOT/sweep.png).

Everything is read from the study, so the report works wherever the study can be opened; only
the preset falls back on the trial's run directory (for a trial recorded before it finished).
"""

from __future__ import annotations

import io
import tomllib
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)
from matplotlib.ticker import NullFormatter  # noqa: E402

from ..checkpoint import atomic_write_bytes, atomic_write_text  # noqa: E402
from ..config import FIELDS, TrainConfig, coerce  # noqa: E402
from ..train import CONFIG  # noqa: E402
from .study import Sweep  # noqa: E402

TABLE = "sweep.md"
PRESET = "best.toml"
FIGURE = "sweep.png"
STATE_COLOURS = {"COMPLETE": "tab:blue", "PRUNED": "tab:orange", "FAIL": "tab:red",
                 "RUNNING": "tab:grey"}


@dataclass
class Row:
    number: int
    state: str
    params: dict
    attrs: dict

    @property
    def best(self) -> float | None:
        return self.attrs.get("best_test_error")


def ranked(sweep: Sweep) -> list[Row]:
    """Every trial that trained, best test error first (trials with no epoch last)."""
    rows = [Row(t.number, t.state.name, t.params, t.user_attrs)
            for t in sweep.study.get_trials(deepcopy=False) if t.state.name != "WAITING"]
    return sorted(rows, key=lambda r: (r.best is None, r.best or 0.0, r.number))


def _value(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def table(sweep: Sweep, rows: list[Row]) -> str:
    definition = sweep.definition
    names = [d.name for d in definition.space.dimensions]
    fixed = ", ".join(f"{k} {_value(v)}" for k, v in definition.fixed.items())
    done = sum(r.state in ("COMPLETE", "PRUNED", "FAIL") for r in rows)
    lines = [f"Sweep {sweep.root}: {done} of {definition.samples} trials finished; "
             f"{definition.space.label}; pruning {definition.prune}.",
             f"Every trial: {fixed}.", "Errors in %; best = minimum over epochs.", "",
             "| rank | trial | state | epochs | best test (epoch) | final test | "
             + " | ".join(names) + " |",
             "|---" * (6 + len(names)) + "|"]
    for rank, row in enumerate(rows, start=1):
        a = row.attrs
        best = f"{a['best_test_error']:.2f} ({a['best_epoch']})" if row.best is not None else "–"
        final = f"{a['final_test_error']:.2f}" if row.best is not None else "–"
        params = " | ".join(_value(row.params[n]) if n in row.params else "–" for n in names)
        lines.append(f"| {rank} | {row.number} | {row.state.lower()} | {a.get('epochs', 0)} | "
                     f"{best} | {final} | {params} |")
    failures = [f"trial {r.number}: {r.attrs['failure']}" for r in rows if "failure" in r.attrs]
    if failures:
        lines += ["", "Failed trials:", *(f"- {f}" for f in failures)]
    return "\n".join(lines) + "\n"


def best_presets(sweep: Sweep, rows: list[Row], count: int = 1) -> list[Path]:
    """ROOT/best.toml (then best-2.toml, ... up to `count`): the best finished trials' whole
    configurations, less their run directories, so that `lcengine train --config ROOT/best.toml
    --out DIR` trains the best again (same seed, same numbers; add --epochs to train longer)."""
    complete = [r for r in rows if r.state == "COMPLETE" and r.best is not None]
    paths = []
    for rank, row in enumerate(complete[:count], start=1):
        text = row.attrs.get("config")
        if text is None:
            text = (sweep.root / row.attrs["run_dir"] / CONFIG).read_text()
        values = {k: coerce(k, v, f"trial {row.number}: {k}")
                  for k, v in tomllib.loads(text).items() if k != "out"}
        path = sweep.root / (PRESET if rank == 1 else f"best-{rank}.toml")
        header = (f"# Number {rank} of the sweep in {sweep.root} "
                  f"({sweep.definition.space.label}): trial {row.number}, best test error "
                  f"{row.best:.2f}% at epoch {row.attrs['best_epoch']} of "
                  f"{row.attrs['epochs']}.\n"
                  f"# Train it again: lcengine train --config {path.name} --out DIR "
                  "[--epochs E]\n")
        atomic_write_text(path, header + TrainConfig(**values).to_toml())
        paths.append(path)
    return paths


def figure(sweep: Sweep, rows: list[Row]) -> Path:
    """One panel per searched hyper-parameter: each trial's best test error at its value."""
    dimensions = sweep.definition.space.dimensions
    trained = [r for r in rows if r.best is not None]
    errors = [r.best for r in trained if r.best > 0]
    columns = min(3, max(1, len(dimensions)))
    lines = max(1, -(-len(dimensions) // columns))
    fig, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3 * lines), squeeze=False)
    for ax in axes.flat[len(dimensions):]:
        ax.axis("off")
    for ax, dimension in zip(axes.flat, dimensions):
        for state, colour in STATE_COLOURS.items():
            points = [r for r in trained if r.state == state and dimension.name in r.params]
            if dimension.kind == "choice":
                xs = [dimension.values.index(r.params[dimension.name]) for r in points]
            else:
                xs = [r.params[dimension.name] for r in points]
            if points:
                ax.scatter(xs, [r.best for r in points], s=18, color=colour,
                           label=state.lower())
        if dimension.kind == "choice":
            ax.set_xticks(range(len(dimension.values)), [_value(v) for v in dimension.values])
            ax.set_xlim(-0.5, len(dimension.values) - 0.5)
        else:                                           # the whole searched range
            if dimension.kind == "log_uniform":
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(*dimension.values)
        if errors and max(errors) > 10 * min(errors):  # diverged trials beside good ones
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(dimension.name)
        ax.set_ylabel("best test error (%)")
        ax.grid(alpha=0.3)
    legend = {label: handle for ax in axes.flat
              for handle, label in zip(*ax.get_legend_handles_labels())}
    if legend:
        fig.legend(legend.values(), legend.keys(), loc="lower right")
    fixed = sweep.definition.fixed
    setting = "-".join(str(fixed.get(k, FIELDS[k].default)) for k in ("dataset", "arch", "algo"))
    fig.suptitle(f"{setting}{'-' + fixed['schedule'] if 'schedule' in fixed else ''}: "
                 f"{len(trained)} trials, best test error against each hyper-parameter")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    path = sweep.root / FIGURE
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_report(sweep: Sweep, echo=print, presets: int = 1) -> None:
    rows = ranked(sweep)
    text = table(sweep, rows)
    atomic_write_text(sweep.root / TABLE, text)
    echo(text, nl=False)
    echo(f"table: {sweep.root / TABLE}")
    written = best_presets(sweep, rows, presets)
    echo("best presets: " + ", ".join(map(str, written)) if written
         else "best preset: none yet (no finished trial)")
    if rows:
        echo(f"figure: {figure(sweep, rows)}")
