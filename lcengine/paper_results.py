"""The paper's reported errors (%), Tables 1a, 1b and 2 (docs: paper.md §4.1-4.3), as data.

Each is the best error reached within the paper's training (500 epochs; "best" = the minimum
over epochs). Keyed (dataset, arch, algo, schedule); schedule is None outside the TP family,
arch "conv" is the "BP ConvNet" row. Values: {"train": .., "test": ..} and for ImageNet
{"top1": .., "top5": ..} (validation set, no train error reported).
"""

from __future__ import annotations

# MNIST and CIFAR-10 rows: (algo, schedule) -> (FC train, FC test, LC train, LC test)
_TABLE1 = {
    "mnist": {
        ("dtp", "parallel"): (0.44, 2.86, 0.00, 1.52),
        ("dtp", "alternating"): (0.00, 1.83, 0.00, 1.46),
        ("sdtp", "parallel"): (1.14, 3.52, 0.00, 1.98),
        ("sdtp", "alternating"): (0.00, 2.28, 0.00, 1.90),
        ("ao-sdtp", "parallel"): (0.96, 2.93, 0.00, 1.92),
        ("ao-sdtp", "alternating"): (0.00, 1.86, 0.00, 1.91),
        ("fa", None): (0.00, 1.85, 0.00, 1.26),
        ("dfa", None): (0.85, 2.75, 0.23, 2.05),
        ("bp", None): (0.00, 1.48, 0.00, 1.17),
    },
    "cifar10": {
        ("dtp", "parallel"): (59.45, 59.14, 28.69, 39.47),
        ("dtp", "alternating"): (30.41, 42.32, 28.54, 39.47),
        ("sdtp", "parallel"): (51.48, 55.32, 43.00, 46.63),
        ("sdtp", "alternating"): (48.65, 54.27, 40.40, 45.66),
        ("ao-sdtp", "parallel"): (4.28, 47.11, 32.67, 40.05),
        ("ao-sdtp", "alternating"): (0.00, 45.40, 34.11, 40.21),
        ("fa", None): (25.62, 41.97, 17.46, 37.44),
        ("dfa", None): (33.35, 47.80, 32.74, 44.41),
        ("bp", None): (28.97, 41.32, 0.83, 32.41),
    },
}
_CONVNET = {"mnist": (0.00, 1.01), "cifar10": (1.39, 31.87)}      # BP ConvNet: train, test

_IMAGENET = {   # top-1, top-5 validation error, LC net unless "conv"
    ("lc", "dtp", "parallel"): (98.34, 94.56),
    ("lc", "dtp", "alternating"): (99.36, 97.28),
    ("lc", "sdtp", "parallel"): (99.28, 97.15),
    ("lc", "fa", None): (93.08, 82.54),
    ("lc", "bp", None): (71.43, 49.07),
    ("conv", "bp", None): (63.93, 40.17),
}


def _build() -> dict:
    results = {}
    for dataset, rows in _TABLE1.items():
        for (algo, schedule), (fc_train, fc_test, lc_train, lc_test) in rows.items():
            results[(dataset, "fc", algo, schedule)] = {"train": fc_train, "test": fc_test}
            results[(dataset, "lc", algo, schedule)] = {"train": lc_train, "test": lc_test}
        train, test = _CONVNET[dataset]
        results[(dataset, "conv", "bp", None)] = {"train": train, "test": test}
    for (arch, algo, schedule), (top1, top5) in _IMAGENET.items():
        results[("imagenet", arch, algo, schedule)] = {"top1": top1, "top5": top5}
    return results


PAPER_RESULTS = _build()


def paper_result(dataset: str, arch: str, algo: str, schedule: str | None) -> dict | None:
    """The paper's errors for a setting (mnist-mini: MNIST's), or None if it has none."""
    dataset = "mnist" if dataset == "mnist-mini" else dataset
    return PAPER_RESULTS.get((dataset, arch, algo, schedule))
