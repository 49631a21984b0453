"""`lcengine report`: runs' best and final errors beside the paper's, and their learning curves.

A run is read from what training wrote: RUN_DIR/config.toml and RUN_DIR/metrics.jsonl (one JSON
record per epoch). "Best" is the minimum over epochs, as the paper reports it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

from .checkpoint import atomic_write_bytes  # noqa: E402
from .config import TrainConfig, read_toml  # noqa: E402
from .paper_results import paper_result  # noqa: E402
from .train import CONFIG, METRICS  # noqa: E402


class ReportError(ValueError):
    """A run directory that cannot be reported; the message names the file."""


@dataclass
class RunRecord:
    run_dir: Path
    config: TrainConfig
    history: list


def read_run(run_dir: Path) -> RunRecord:
    config_path = run_dir / CONFIG
    if not config_path.is_file():
        raise ReportError(f"{config_path}: missing; is {run_dir} a run directory of "
                          "lcengine train?")
    config = TrainConfig(**read_toml(config_path))
    return RunRecord(run_dir, config, read_metrics(run_dir / METRICS))


def read_metrics(path: Path) -> list[dict]:
    """Epoch records; an unterminated last line (a run killed while appending) is left out."""
    if not path.is_file():
        raise ReportError(f"{path}: missing")
    lines = path.read_text().split("\n")
    history = []
    for number, line in enumerate(lines[:-1], start=1):
        try:
            history.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ReportError(f"{path}: line {number} is not JSON ({err})") from None
    return history


def pct(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def setting_notes(config: TrainConfig) -> set[str]:
    """What sets a run apart from the paper's setting it is compared with."""
    notes = set()
    if config.dataset == "mnist-mini":
        notes.add("mnist-mini runs are compared with the paper's full-MNIST numbers.")
    if config.limit_train is not None or config.width != 1.0:
        notes.add("runs with limit_train or width ≠ 1 are not the paper's setting.")
    return notes


def table(runs: list[RunRecord]) -> str:
    """A Markdown table: one row per run, the paper's numbers for the same setting beside it."""
    rows = ["| run | setting | epochs | best train | best test (epoch) | final test | paper train "
            "| paper test |", "|---|---|---|---|---|---|---|---|"]
    notes = set()
    for run in runs:
        c, h = run.config, run.history
        paper = paper_result(c.dataset, c.arch, c.algo, c.schedule) or {}
        if not h:
            best_train = best_test = final = "–"
        else:
            best_train = pct(min(r["train_error"] for r in h))
            best = min(h, key=lambda r: r["test_error"])
            best_test = f"{best['test_error']:.2f} ({best['epoch']})"
            final = pct(h[-1]["test_error"])
            if "test_top5_error" in best:
                best_test += f", top-5 {min(r['test_top5_error'] for r in h):.2f}"
                final += f", top-5 {h[-1]['test_top5_error']:.2f}"
        if "top1" in paper:
            paper_train, paper_test = "–", f"{paper['top1']:.2f}, top-5 {paper['top5']:.2f}"
        else:
            paper_train, paper_test = pct(paper.get("train")), pct(paper.get("test"))
        notes |= setting_notes(c)
        rows.append(f"| {run.run_dir} | {c.setting()} | {len(h)}/{c.epochs} | {best_train} | "
                    f"{best_test} | {final} | {paper_train} | {paper_test} |")
    text = "Errors in %; best = minimum over epochs (as the paper reports); the paper trained for "
    text += "500 epochs.\n\n" + "\n".join(rows) + "\n"
    if notes:
        text += "\n" + "\n".join(sorted(notes)) + "\n"
    return text


def save_png(fig, path: Path) -> Path:
    """Write `fig` to `path` as a PNG (whole or not at all) and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def curves(run: RunRecord) -> Path:
    """RUN_DIR/curves.png: train and test error per epoch, and the paper's best test error."""
    h, c = run.history, run.config
    epochs = [r["epoch"] for r in h]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [r["train_error"] for r in h], "--.", label="train")
    ax.plot(epochs, [r["test_error"] for r in h], "-.", label="test")
    if "test_top5_error" in h[0]:
        ax.plot(epochs, [r["test_top5_error"] for r in h], ":.", label="test top-5")
    paper = paper_result(c.dataset, c.arch, c.algo, c.schedule) or {}
    if "test" in paper or "top1" in paper:
        ax.axhline(paper.get("test", paper.get("top1")), color="grey", linewidth=0.8,
                   label="paper, best test (500 epochs)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (%)")
    ax.set_title(c.setting())
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, run.run_dir / "curves.png")


#: the epoch record's per-layer angles, and what each panel of angles.png calls them
ANGLES = {"alignment_deg": "W-update to BP's gradient", "feedback_deg": "feedback B_l to W_l"}


def angle_curves(run: RunRecord) -> Path | None:
    """RUN_DIR/angles.png: per layer and epoch, the angle of the rule's W-update to BP's gradient
    and, for rules with feedback weights (FA, sign-symmetry, KP), of B_l to W_l; None for a
    run without angles (BP)."""
    kinds = [k for k in ANGLES if run.history[-1].get(k)]
    if not kinds:
        return None
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4), squeeze=False)
    epochs = [r["epoch"] for r in run.history]
    for ax, kind in zip(axes[0], kinds):
        for key in run.history[-1][kind]:
            layer = int(next(part for part in key.split(".") if part.isdigit())) + 1
            ax.plot(epochs, [r.get(kind, {}).get(key, float("nan")) for r in run.history], ".-",
                    label=f"layer {layer}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("angle (degrees)")
        ax.set_title(f"{run.config.setting()}: {ANGLES[kind]}")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return save_png(fig, run.run_dir / "angles.png")
