"""`lcengine report --compare`: the paper's Table 1 as the given runs stand.

For each (dataset, arch) of the runs: a Markdown table of every rule's best and final test and
train error beside the paper's, with the epochs run out of the epochs asked, how much the best
fell in the last epochs and when the curve would reach the paper's number (a power-law fit,
epochs_to_reach); one figure overlaying every rule's test- and train-error curves with the
paper's best as a mark; one figure of each rule's angle to BP's gradient per layer over epochs,
and one of the angle between each layer's feedback weights B_l and W_l (FA, the sign-symmetry
rules, KP: does B stay random, keep W's signs, or learn W?).
Above them, one overview in Table 1's layout.

What one table may hold (anything else is "mixed settings", a one-line ReportError):
- one (dataset, arch): tables are made per (dataset, arch), so runs of different datasets or
  nets never share one (mnist-mini is a dataset of its own, compared with MNIST's numbers);
- one protocol: the PROTOCOL fields are equal in every run, because they change what an error
  means (the net's size, the steps per epoch, which images are counted) for every rule alike;
- one row per run, named by its rule (algo and schedule) and, where runs of one rule differ in
  their own settings (lr, seed, aux_units, ...), by what sets each apart. Two runs of one rule
  whose settings are all equal cannot be told apart.
BOOKKEEPING fields (where a run lives, how it was computed, how long it was asked to run) are
never compared. Rules are read from the configs, so a new algo needs nothing here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from .checkpoint import atomic_write_text
from .config import ALGOS, ARCHS, DATASETS, SCHEDULES, TrainConfig
from .paper_results import paper_result
from .rules import RULES
from .report import ReportError, RunRecord, pct, plt, save_png, setting_notes

GROUP = ("dataset", "arch")
RULE = ("algo", "schedule")
#: equal in every run of one table, or the table compares unlike things
PROTOCOL = ("width", "batch_size", "limit_train", "limit_test", "train_eval_images")
#: never compared: where the run and its data live, how it was computed, how long it was asked to
#: run (a resumed run may be extended; the table shows epochs run / asked)
BOOKKEEPING = ("out", "data", "epochs", "device", "kernels", "workers", "threads",
               "explode_factor")
#: the settings that tell two runs of one rule apart: every other field, new ones included
VARIANT = tuple(f.name for f in fields(TrainConfig)
                if f.name not in GROUP + RULE + PROTOCOL + BOOKKEEPING)
#: the Markdown block `--markdown FILE` replaces when FILE already holds it
BEGIN = "<!-- lcengine report --compare: begin (generated; rerun the command to update) -->"
END = "<!-- lcengine report --compare: end -->"
DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "imagenet": "ImageNet"}
ARCH_NAMES = {"conv": "ConvNet"}
#: epochs over which a curve's fall is measured ("still falling?")
RECENT = 10
#: fewest epochs a curve is extrapolated from (epochs_to_reach)
MIN_FIT = 4
LINE_STYLES = ("-", "--", ":", "-.")


@dataclass
class Row:
    run: RunRecord
    label: str          # the rule, and what sets this run apart from others of its rule
    rule_key: tuple     # (algo, schedule): the row's colour, and its place in the order

    @property
    def paper(self) -> dict:
        c = self.run.config
        result = paper_result(c.dataset, c.arch, c.algo, c.schedule) or {}
        return {"test": result.get("test", result.get("top1")), "train": result.get("train")}


@dataclass
class Group:
    dataset: str
    arch: str
    rows: list

    @property
    def title(self) -> str:
        return (f"{DATASET_NAMES.get(self.dataset, self.dataset)} "
                f"{ARCH_NAMES.get(self.arch, self.arch.upper())}")

    @property
    def slug(self) -> str:
        return f"{self.dataset}-{self.arch}"


def rule_name(algo: str, schedule: str | None) -> str:
    title = getattr(RULES.get(algo), "title", "") or algo.upper()
    return title + (f", {schedule}" if schedule else "")


def _order(values: tuple, value) -> tuple:
    """Known values in their declared order, then unknown ones alphabetically."""
    return (values.index(value), "") if value in values else (len(values), str(value))


def _rule_order(key: tuple) -> tuple:
    algo, schedule = key
    return _order(ALGOS, algo) + _order(SCHEDULES, schedule)


def group_runs(runs: list[RunRecord]) -> list[Group]:
    """The runs as tables, per (dataset, arch); ReportError for mixed settings (module doc)."""
    by_group = {}
    for run in runs:
        by_group.setdefault(tuple(getattr(run.config, f) for f in GROUP), []).append(run)
    groups = []
    for (dataset, arch), members in by_group.items():
        _check_protocol(members)
        groups.append(Group(dataset, arch, _rows(members)))
    return sorted(groups, key=lambda g: _order(DATASETS, g.dataset) + _order(ARCHS, g.arch))


def _config_path(run: RunRecord) -> Path:
    return run.run_dir / "config.toml"


def _check_protocol(members: list[RunRecord]) -> None:
    first = members[0]
    for run in members[1:]:
        for name in PROTOCOL:
            mine, theirs = getattr(run.config, name), getattr(first.config, name)
            if mine != theirs:
                raise ReportError(
                    f"{_config_path(run)}: {name} = {mine}, but {_config_path(first)} has "
                    f"{theirs}: one table compares runs of one protocol "
                    f"({', '.join(PROTOCOL)}); report them separately")


def _rows(members: list[RunRecord]) -> list[Row]:
    by_rule = {}
    for run in members:
        by_rule.setdefault(tuple(getattr(run.config, f) for f in RULE), []).append(run)
    rows = []
    for key, runs in by_rule.items():
        differing = [f for f in VARIANT if len({getattr(r.config, f) for r in runs}) > 1]
        seen = {}
        for run in runs:
            settings = tuple(getattr(run.config, f) for f in VARIANT)
            if settings in seen:
                raise ReportError(
                    f"{_config_path(run)}: the same settings as {_config_path(seen[settings])} "
                    f"({run.config.setting()}); a table cannot tell two such runs apart: "
                    "report one of them")
            seen[settings] = run
            apart = ", ".join(f"{f} {getattr(run.config, f)}" for f in differing)
            rows.append(Row(run, rule_name(*key) + (f" ({apart})" if apart else ""), key))
    return sorted(rows, key=lambda row: _rule_order(row.rule_key) + (row.label,))


# --- numbers ------------------------------------------------------------------------------------
def summary(run: RunRecord) -> dict:
    """Best and final errors, the epochs, and how much the best test error fell recently."""
    h = run.history
    numbers = {"epochs": len(h), "asked": run.config.epochs,
               "seconds": sum(r.get("seconds") or 0.0 for r in h)}
    if not h:
        return numbers
    best = min(h, key=lambda r: r["test_error"])
    numbers.update(best_test=best["test_error"], best_epoch=best["epoch"],
                   final_test=h[-1]["test_error"],
                   best_train=min(r["train_error"] for r in h), final_train=h[-1]["train_error"])
    if len(h) > RECENT:
        earlier = min(r["test_error"] for r in h[:-RECENT])
        numbers["recent_fall"] = max(0.0, earlier - best["test_error"])
    return numbers


def epochs_to_reach(history: list, target: float) -> float | None:
    """The epoch at which the best test error so far would reach `target`, from a power law
    (a straight line through log error against log epoch) fitted over the run's second half, at
    least MIN_FIT epochs. inf where the curve no longer falls; None with fewer epochs. It ignores
    the curve's floor, so it is optimistic while the curve bends: fitted to epochs 6-11 of BP on
    MNIST LC it gave 1.42 for epoch 16, which measured 1.74 (a line in log epoch gave 1.16)."""
    if len(history) < MIN_FIT:
        return None
    best, running = [], math.inf
    for r in history:
        running = min(running, r["test_error"])
        best.append(running)
    start = min(len(history) // 2, len(history) - MIN_FIT)
    x = np.log([r["epoch"] for r in history[start:]])
    slope, intercept = np.polyfit(x, np.log(np.maximum(best[start:], 1e-3)), 1)
    if slope >= -1e-9:
        return math.inf
    return math.exp(min(50.0, (math.log(target) - intercept) / slope))


def _reach_text(run: RunRecord, target: float | None) -> str:
    h = run.history
    if target is None or not h:
        return "–"
    reached = next((r["epoch"] for r in h if r["test_error"] <= target), None)
    if reached is not None:
        return f"reached ({reached})"
    estimate = epochs_to_reach(h, target)
    if estimate is None:
        return "–"
    if estimate > 100_000:
        return "not at this rate"
    return f"≈ {float(f'{estimate:.2g}'):,.0f}"


def _signed(value) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def group_table(group: Group) -> str:
    head = ("| rule | run | epochs run / asked | best test (epoch) | final test | best train "
            f"| final train | paper test | paper train | best − paper | fall of best test, last "
            f"{RECENT} epochs | epochs to the paper's best (power-law fit, optimistic) "
            "| training time |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for row in group.rows:
        n, paper = summary(row.run), row.paper
        best = n.get("best_test")
        gap = None if best is None or paper["test"] is None else best - paper["test"]
        best_text = "–" if best is None else f"{best:.2f} ({n['best_epoch']})"
        lines.append(
            f"| {row.label} | {row.run.run_dir.name} | {n['epochs']} / {n['asked']} "
            f"| {best_text} | {pct(n.get('final_test'))} | {pct(n.get('best_train'))} "
            f"| {pct(n.get('final_train'))} | {pct(paper['test'])} | {pct(paper['train'])} "
            f"| {_signed(gap)} | {pct(n.get('recent_fall'))} "
            f"| {_reach_text(row.run, paper['test'])} | {_duration(n['seconds'])} |")
    return "\n".join(lines) + "\n"


def overview(groups: list[Group]) -> str:
    """Table 1's layout: a row per rule, a column per (dataset, arch); ours (paper) · epochs."""
    labels = []
    cells = {}
    for g in groups:
        for row in g.rows:
            if row.label not in labels:
                labels.append(row.label)
            n = summary(row.run)
            ours = pct(n.get("best_test"))
            cells[row.label, g.slug] = (f"{ours} ({pct(row.paper['test'])}) · "
                                        f"{n['epochs']}/{n['asked']} ep")
    order = {row.label: _rule_order(row.rule_key) for g in groups for row in g.rows}
    labels.sort(key=lambda label: order[label] + (label,))
    lines = ["| rule | " + " | ".join(g.title for g in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for label in labels:
        lines.append(f"| {label} | "
                     + " | ".join(cells.get((label, g.slug), "") for g in groups) + " |")
    return "\n".join(lines) + "\n"


# --- figures ------------------------------------------------------------------------------------
def _colours(groups: list[Group]) -> dict:
    """One colour per rule, the same in every figure."""
    keys = sorted({row.rule_key for g in groups for row in g.rows}, key=_rule_order)
    cycle = plt.get_cmap("tab10").colors
    return {key: cycle[i % len(cycle)] for i, key in enumerate(keys)}


def _error_scale(ax, values: list) -> None:
    """Log where the errors span a factor of 4 or more (MNIST: 8 % → 1.4 %, where a linear axis
    from 0 squeezes the last points' differences into a few pixels), else linear (CIFAR-10:
    65 % → 40 %); symlog where one is exactly 0 (a train error), linear only below the smallest
    non-zero decade."""
    positive = [v for v in values if v is not None and v > 0]
    span = max(positive) / min(positive) if positive else 1.0
    if span < 4:
        ax.set_ylim(bottom=0)
        return
    if len(positive) < len([v for v in values if v is not None]):
        decade = 10.0 ** math.floor(math.log10(min(positive)))
        ax.set_yscale("symlog", linthresh=max(0.01, decade), linscale=0.3)
        ax.set_ylim(bottom=0)
    else:
        ax.set_yscale("log")
        ticks = (1, 1.5, 2, 3, 5, 7) if span < 20 else (1, 2, 5)  # more under about a decade
        ax.yaxis.set_major_locator(LogLocator(subs=ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def curves_figure(group: Group, colours: dict, path: Path) -> Path | None:
    """Test (left) and train (right) error per epoch of every run; the paper's best as a ◀ on
    the right edge in the rule's colour. None if no run has an epoch yet."""
    rows = [row for row in group.rows if row.run.history]
    if not rows:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharex=True)
    styles, per_rule = {}, {}
    for row in rows:      # runs of one rule (variants) share its colour, each its own line style
        per_rule[row.rule_key] = per_rule.get(row.rule_key, -1) + 1
        styles[row.label] = LINE_STYLES[per_rule[row.rule_key] % len(LINE_STYLES)]
    for part, ax in zip(("test", "train"), axes):
        values = []
        for row in rows:
            h = row.run.history
            errors = [r[f"{part}_error"] for r in h]
            ax.plot([r["epoch"] for r in h], errors, styles[row.label], color=colours[row.rule_key],
                    label=row.label, linewidth=1.4, marker="." if len(h) < 30 else None)
            values += errors
            paper = row.paper[part]
            if paper is not None:
                ax.plot(1.0, paper, "<", color=colours[row.rule_key], markersize=9,
                        transform=ax.get_yaxis_transform(), clip_on=False)
                values.append(paper)
        _error_scale(ax, values)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{part} error (%)")
        ax.set_title(f"{group.title}: {part} error")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], linestyle="", marker="<", color="grey", markersize=9))
    labels.append("paper's best (500 epochs)")
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.05 * math.ceil(len(labels) / 4)))
    return save_png(fig, path)


@dataclass(frozen=True)
class AngleKind:
    """One per-layer angle an epoch record holds (train.epoch_record), as a figure."""
    key: str                 # the record's {name: degrees}
    slug: str                # the figure file's suffix
    caption: str             # its alt text in the report
    axis: str
    title: str


ANGLE_KINDS = (
    AngleKind("alignment_deg", "angles", "angle to BP per layer", "angle to BP (°)",
              "angle between each layer's update and BP's gradient (one fixed minibatch)"),
    AngleKind("feedback_deg", "feedback", "angle between B and W per layer", "angle B to W (°)",
              "angle between each layer's feedback weights B_l and its forward weights W_l"),
)


def _layer_number(name: str) -> int:
    """1-based layer of an angle's name: "0.W" (layer 1's W), "B.1" (the B of layer 2)."""
    return int(next(part for part in name.split(".") if part.isdigit())) + 1


def angles_figure(group: Group, kind: AngleKind, path: Path) -> Path | None:
    """A panel per run that records `kind`'s angles (to BP: every rule but BP; B to W: the rules
    with feedback weights): one line per layer, a layer's colour the same in both kinds. None
    if no run has any."""
    rows = [row for row in group.rows if any(r.get(kind.key) for r in row.run.history)]
    if not rows:
        return None
    names = {k for row in rows for r in row.run.history for k in r.get(kind.key, {})}
    names = sorted(names, key=_layer_number)
    depth = _layer_number(names[-1])      # the top layer: both kinds name it (W_L, B_L)
    shades = plt.get_cmap("viridis")
    ncols = min(3, len(rows))
    nrows = math.ceil(len(rows) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), sharex=True,
                             sharey=True, squeeze=False)
    top = 90.0
    for ax, row in zip(axes.flat, rows):
        h = [r for r in row.run.history if r.get(kind.key)]
        for name in names:
            degrees = [r[kind.key].get(name, math.nan) for r in h]
            top = max([top] + [d for d in degrees if d == d])
            layer = _layer_number(name)
            ax.plot([r["epoch"] for r in h], degrees, label=f"layer {layer}",
                    color=shades(0.85 * (layer - 1) / max(1, depth - 1)),
                    marker="." if len(h) < 30 else None)
        ax.set_title(row.label, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(kind.axis)
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    for column in range(ncols):       # the lowest panel of each column shows the epochs
        lowest = axes[(len(rows) - 1 - column) // ncols, column]
        lowest.set_xlabel("epoch")
        lowest.xaxis.set_tick_params(labelbottom=True)
    axes[0, 0].set_ylim(0, top * 1.05)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", frameon=False)
    fig.suptitle(f"{group.title}: {kind.title}")
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    return save_png(fig, path)


# --- the report ---------------------------------------------------------------------------------
def compare(runs: list[RunRecord], figures: Path, markdown: Path | None = None) -> str:
    """The Markdown block (overview, then per (dataset, arch) its table and figures), with the
    figures written to `figures`; links are relative to `markdown`'s folder if given."""
    groups = group_runs(runs)
    figures.mkdir(parents=True, exist_ok=True)
    base = markdown.parent if markdown else Path.cwd()
    colours = _colours(groups)
    parts = ["Errors in %. Best = the minimum over the epochs run, as the paper reports it (the "
             "paper trained\nfor 500 epochs); an alternating TP epoch is one inverse pass and one "
             "forward pass.\nPaper: Bartunov et al. 2018, Table 1.", "",
             "Best test error, ours (paper's) · epochs run / asked:", "", overview(groups)]
    for g in groups:
        notes = set().union(*(setting_notes(row.run.config) for row in g.rows))
        parts += [f"### {g.title} (`{g.rows[0].run.config.net}`)", "", group_table(g),
                  *(f"{note}\n" for note in sorted(notes))]
        drawn = [("test and train error per epoch",
                  curves_figure(g, colours, figures / f"{g.slug}-errors.png"))]
        drawn += [(kind.caption, angles_figure(g, kind, figures / f"{g.slug}-{kind.slug}.png"))
                  for kind in ANGLE_KINDS]
        for caption, figure in drawn:
            if figure is not None:
                link = Path(os.path.relpath(figure, base)).as_posix()
                parts += [f"![{g.title}: {caption}]({link})", ""]
    return "\n".join(parts)


def comparison_report(runs: list[RunRecord], markdown: str | None, figures: str | None) -> str:
    """`lcengine report --compare`: the block, written into `markdown` if given (write_block);
    the figures in `figures`, by default figures/ beside `markdown`, else in ./figures."""
    markdown = Path(markdown) if markdown else None
    if figures is None:
        figures = (markdown.parent if markdown else Path.cwd()) / "figures"
    block = compare(runs, Path(figures), markdown)
    if markdown:
        write_block(markdown, block)
    return block


def write_block(path: Path, block: str) -> None:
    """Write `block` between BEGIN and END: into `path` where it already holds them (the text
    around them is kept), else as a new file; a file without them is not overwritten."""
    wrapped = f"{BEGIN}\n{block.rstrip()}\n{END}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, wrapped + "\n")
        return
    text = path.read_text()
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise ReportError(f"{path}: exists and has no generated block (a line {BEGIN!r}, later "
                          f"a line {END!r}); name a new file, or put the two lines where the "
                          "block goes")
    atomic_write_text(path, text[:start] + wrapped + text[stop + len(END):])
