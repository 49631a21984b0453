"""`lcengine report --compare` on run directories written here as `lcengine train` writes them
(config.toml from the resolved TrainConfig, one JSON record per epoch in metrics.jsonl): the
table's numbers, the figures, the generated block in a Markdown file, and mixed settings."""

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from lcengine.cli import main
from lcengine.compare import (BEGIN, END, _error_scale, comparison_report, epochs_to_reach,
                              group_runs, rule_name)
from lcengine.config import resolve
from lcengine.report import plt, read_run


def record(epoch, test, train, angles=None, feedback=None, seconds=60.0):
    """An epoch record with every key train.epoch_record writes."""
    return {"epoch": epoch, "train_error": train, "test_error": test, "best_test_error": test,
            "loss": 0.1, "test_loss": 0.1, "images_per_s": 1000.0, "seconds": seconds,
            "alignment_deg": angles or {}, "feedback_deg": feedback or {}, "info": {}}


def make_run(root: Path, name: str, errors, angles=None, feedback=None, **settings) -> Path:
    """A run directory; `errors` [(test, train)] per epoch, `angles` a {layer: degrees} per epoch
    (the top layer at 0, as every rule's is), `feedback` the same for B to W."""
    run = root / name
    run.mkdir(parents=True)
    given = {"dataset": "mnist", "data": str(root), "arch": "lc", "epochs": 100,
             "batch_size": 100, "train_eval_images": 0, "out": str(run), **settings}
    config, _ = resolve([("test", given)])
    (run / "config.toml").write_text(config.to_toml())
    lines = [json.dumps(record(i + 1, test, train, angles and {**angles(i), "2.W": 0.0},
                               feedback and feedback(i)))
             for i, (test, train) in enumerate(errors)]
    (run / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    return run


def invoke(*args):
    return CliRunner().invoke(main, ["report", "--compare", *map(str, args)],
                              catch_exceptions=False)


def fa_angles(epoch):
    return {"0.W": 80.0 - epoch, "1.W": 60.0 - 2 * epoch}


def fa_feedback(epoch):
    return {"B.1": 89.0, "B.2": 70.0 - epoch}


@pytest.fixture
def runs(tmp_path):
    """MNIST-LC: BP finished, FA 3 epochs in, DTP 12 epochs in, TP not started; CIFAR-10 FC BP."""
    root = tmp_path / "runs"
    make_run(root, "mnist-lc-bp", [(3.0, 2.5), (1.5, 0.5), (1.6, 0.0)], algo="bp", epochs=3)
    make_run(root, "mnist-lc-fa", [(4.0, 3.5), (1.9, 0.5), (2.1, 0.4)], fa_angles, fa_feedback,
             algo="fa")
    dtp = [(10.0 - i * 0.5, 9.0 - i * 0.5) for i in range(12)]
    make_run(root, "mnist-lc-dtp", dtp, fa_angles, algo="dtp")
    make_run(root, "mnist-lc-tp", [], algo="tp")
    make_run(root, "cifar-fc-bp", [(60.0, 59.0), (55.0, 50.0)], algo="bp", dataset="cifar10",
             arch="fc", train_eval_images=0)
    return root


def rows_of(text):
    return {line.split(" | ")[0][2:]: line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| rule ")}


def test_table_numbers_beside_the_paper(runs, tmp_path):
    out = tmp_path / "docs" / "results.md"
    result = invoke("--markdown", out, *sorted(runs.iterdir()))
    assert result.exit_code == 0, result.output
    text = result.output
    mnist, cifar = text.split("### MNIST LC")[1].split("### CIFAR-10 FC")
    rows = rows_of(mnist)
    # rule | run | epochs | best (epoch) | final | best train | final train | paper test, train
    # | best − paper | fall of the best in the last 10 epochs | epochs to the paper's | time
    assert rows["BP"] == ("| BP | mnist-lc-bp | 3 / 3 | 1.50 (2) | 1.60 | 0.00 | 0.00 | 1.17 | "
                          "0.00 | +0.33 | – | – | 3 min |")
    assert rows["FA"] == ("| FA | mnist-lc-fa | 3 / 100 | 1.90 (2) | 2.10 | 0.40 | 0.40 | 1.26 | "
                          "0.00 | +0.64 | – | – | 3 min |")
    # DTP: 10.0 → 4.5 in 12 epochs; the best of epochs 1-2 is 9.5, so the last 10 fell 5.0; a
    # power law through epochs 7-12 reaches 1.46 at epoch 49.9
    assert rows["DTP, alternating"] == (
        "| DTP, alternating | mnist-lc-dtp | 12 / 100 | 4.50 (12) | 4.50 | 3.50 | 3.50 | 1.46 | "
        "0.00 | +3.04 | 5.00 | ≈ 50 | 12 min |")
    # a rule the paper has no number for, and a run with no epoch yet
    assert rows["TP, alternating"] == ("| TP, alternating | mnist-lc-tp | 0 / 100 | – | – "
                                       "| – | – | – | – | – | – | – | 0 min |")
    assert rows_of(cifar)["BP"].startswith("| BP | cifar-fc-bp | 2 / 100 | 55.00 (2) | 55.00 | "
                                           "50.00 | 50.00 | 41.32 | 28.97 | +13.68 |")
    overview = rows_of(text.split("### ")[0])
    assert overview["BP"] == "| BP | 1.50 (1.17) · 3/3 ep | 55.00 (41.32) · 2/100 ep |"
    assert overview["FA"] == "| FA | 1.90 (1.26) · 3/100 ep |  |"
    assert list(overview) == ["BP", "FA", "TP, alternating", "DTP, alternating"]
    # the Markdown file holds the same block, its figure links relative to the file
    assert out.read_text() == f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    assert "![MNIST LC: test and train error per epoch](figures/mnist-lc-errors.png)" in text
    assert "![MNIST LC: angle to BP per layer](figures/mnist-lc-angles.png)" in text
    assert ("![MNIST LC: angle between B and W per layer](figures/mnist-lc-feedback.png)"
            in text)
    assert "cifar10-fc-angles" not in text                       # BP alone: no angles
    assert "cifar10-fc-feedback" not in text


def test_figures_are_written(runs, tmp_path):
    figures = tmp_path / "figs"
    comparison_report([read_run(d) for d in sorted(runs.iterdir())], None, str(figures))
    written = {p.name: p.read_bytes() for p in figures.iterdir()}
    assert set(written) == {"mnist-lc-errors.png", "mnist-lc-angles.png",
                            "mnist-lc-feedback.png", "cifar10-fc-errors.png"}
    for name, data in written.items():
        assert data.startswith(b"\x89PNG") and len(data) > 20_000, name


def test_runs_of_one_rule_are_told_apart_by_what_differs(tmp_path):
    make_run(tmp_path, "fa-seed0", [(2.0, 1.0)], algo="fa")
    make_run(tmp_path, "fa-seed1", [(2.2, 1.1)], algo="fa", seed=1)
    make_run(tmp_path, "fa-lr", [(2.4, 1.2)], algo="fa", seed=1, lr=3e-4)
    (group,) = group_runs([read_run(tmp_path / n) for n in ("fa-seed0", "fa-seed1", "fa-lr")])
    labels = {row.run.run_dir.name: row.label for row in group.rows}
    assert labels["fa-seed0"] == "FA (seed 0, lr 0.000219)"               # Table 5's lr
    assert labels["fa-seed1"] == "FA (seed 1, lr 0.000219)"
    assert labels["fa-lr"] == "FA (seed 1, lr 0.0003)"


def assert_one_line_error(result, *fragments):
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), \
        result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_mixed_settings_are_one_line_errors(tmp_path):
    a = make_run(tmp_path, "a", [(2.0, 1.0)], algo="bp")
    same = make_run(tmp_path, "same", [(2.1, 1.0)], algo="bp", threads=2, epochs=50)
    batch = make_run(tmp_path, "batch", [(2.1, 1.0)], algo="fa", batch_size=32)
    assert_one_line_error(invoke(a, same), f"{same}/config.toml: the same settings as {a}/",
                          "cannot tell")
    assert_one_line_error(invoke(a, batch), f"{batch}/config.toml: batch_size = 32",
                          f"{a}/config.toml has 100", "one protocol")
    figures = tmp_path / "figures"
    assert not figures.exists()                                  # nothing written on an error
    assert_one_line_error(CliRunner().invoke(main, ["report", "--figures", figures, str(a)]),
                          "--figures: only with --compare")


def test_a_markdown_file_keeps_its_text_around_the_block(runs, tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text(f"# Results\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## Conclusion\n\nkept\n")
    assert invoke("--markdown", doc, runs / "mnist-lc-bp").exit_code == 0
    text = doc.read_text()
    assert text.startswith(f"# Results\n\nintro\n\n{BEGIN}\nErrors in %")
    assert text.endswith(f"{END}\n\n## Conclusion\n\nkept\n") and "old table" not in text
    plain = tmp_path / "notes.md"
    plain.write_text("my notes\n")
    assert_one_line_error(invoke("--markdown", plain, runs / "mnist-lc-bp"),
                          f"{plain}: exists and has no generated block")
    assert plain.read_text() == "my notes\n"


def test_a_setting_unlike_the_papers_is_noted_under_its_table(tmp_path):
    run = make_run(tmp_path, "mini", [(5.0, 4.0)], algo="bp", dataset="mnist-mini", data=None,
                   width=0.5)
    result = invoke("--figures", tmp_path / "figures", run)
    assert result.exit_code == 0, result.output
    section = result.output.split("### mnist-mini LC (`mnist-lc`)")[1]
    assert "mnist-mini runs are compared with the paper's full-MNIST numbers." in section
    assert "runs with limit_train or width ≠ 1 are not the paper's setting." in section
    assert rows_of(section)["BP"].startswith("| BP | mini | 1 / 100 | 5.00 (1) |")


def test_epochs_to_reach_the_papers_number_from_the_curve():
    power_law = [{"epoch": e, "test_error": 10 * e ** -0.5} for e in range(1, 21)]
    assert epochs_to_reach(power_law, 1.46) == pytest.approx((10 / 1.46) ** 2)
    flat = [{"epoch": e, "test_error": 3.0 if e > 2 else 5.0} for e in range(1, 21)]
    assert epochs_to_reach(flat, 1.46) == math.inf
    assert epochs_to_reach(power_law[:3], 1.46) is None


def test_a_cell_that_reached_the_paper_says_when(tmp_path):
    run = make_run(tmp_path, "fa", [(3.0, 2.0), (1.2, 0.1), (1.3, 0.0)], algo="fa")
    result = invoke("--figures", tmp_path / "figures", run)
    assert rows_of(result.output.split("### ")[1])["FA"].endswith(        # 1.20 ≤ 1.26 at 2
        "| 1.26 | 0.00 | -0.06 | – | reached (2) | 3 min |")


@pytest.mark.parametrize("values, scale", [
    ([8.6, 3.0, 1.6, 1.36], "log"),            # MNIST test error: a factor of 6
    ([8.0, 0.5, 0.0, 0.0], "symlog"),          # a train error that reaches 0
    ([63.5, 52.0, 43.4], "linear"),            # CIFAR-10: a factor of 1.5
])
def test_error_axis_is_logarithmic_where_the_errors_span_a_factor_of_4(values, scale):
    fig, ax = plt.subplots()
    _error_scale(ax, values)
    assert ax.get_yscale() == scale
    plt.close(fig)


def test_rules_are_named_as_the_literature_writes_them():
    assert rule_name("usf", None) == "uSF"
    assert rule_name("brsf", None) == "brSF"
    assert rule_name("dtp", "alternating") == "DTP, alternating"
