#!/usr/bin/env python
"""The paper's hyper-parameter protocol (App. 5.3): random search, best configuration reported.

Samples configurations of one (rule, schedule) setting, trains each with `lcengine train` for a
few epochs, one after the other, and appends one JSON line per finished run to
ROOT/search.jsonl (configuration, best and final test error, epochs). A run that was cut off is
resumed on the next invocation, and finished samples are not run again, so the search can be
stopped and restarted at will. Sample k is drawn from its own seed (search seed, k): the same
command gives the same configurations.

The default space is the one paper.md §3.1 infers from Table 5 (wider than the printed Table 4);
narrow it with --lr, --inv-lr and --sigma. Example:

    python bin/random_search.py --algo sdtp --schedule alternating --samples 16 --epochs 20 \\
        --root runs/search-sdtp-alt -- --dataset mnist --data data/mnist
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
from pathlib import Path

BETA1 = (0.9, 0.99)
BETA2 = (0.95, 0.99, 0.999)
EPS = (1e-3, 1e-4, 1e-6, 1e-8)
#: the lcengine of this interpreter, whatever `lcengine` is first on PATH
LCENGINE = (sys.executable, "-m", "lcengine")


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return float(f"{math.exp(rng.uniform(math.log(low), math.log(high))):.3g}")


def sample(k: int, args) -> dict:
    rng = random.Random(f"{args.seed}/{k}")
    config = {"lr": log_uniform(rng, *args.lr), "beta1": rng.choice(BETA1),
              "beta2": rng.choice(BETA2), "eps": rng.choice(EPS)}
    if args.algo in ("tp", "dtp", "sdtp", "ao-sdtp"):
        config |= {"inv-lr": log_uniform(rng, *args.inv_lr), "inv-beta1": rng.choice(BETA1),
                   "inv-beta2": rng.choice(BETA2), "inv-eps": rng.choice(EPS),
                   "sigma": round(rng.uniform(*args.sigma), 3)}
    if args.algo in ("tp", "dtp"):
        config["alpha"] = round(rng.uniform(*args.alpha), 3)
    return config


def history(run_dir: Path) -> list[dict]:
    """The run's per-epoch records (empty if it wrote none)."""
    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        return []
    return [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", required=True)
    parser.add_argument("--schedule", default=None)
    parser.add_argument("--samples", type=int, default=60, help="the paper ran 60")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler")
    parser.add_argument("--root", type=Path, required=True, help="directory of the runs")
    parser.add_argument("--lr", type=float, nargs=2, default=(1e-5, 3e-3))
    parser.add_argument("--inv-lr", type=float, nargs=2, default=(1e-5, 1e-2))
    parser.add_argument("--sigma", type=float, nargs=2, default=(0.01, 0.4))
    parser.add_argument("--alpha", type=float, nargs=2, default=(0.01, 0.4))
    parser.add_argument("train_args", nargs="*", help="passed to lcengine train (after --)")
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    summary = args.root / "search.jsonl"
    done = set()
    if summary.exists():
        done = {json.loads(line)["sample"] for line in summary.read_text().splitlines() if line}
    for k in range(args.samples):
        if k in done:
            continue
        config = sample(k, args)
        run_dir = args.root / f"sample-{k:03d}"
        if (run_dir / "checkpoints").exists():
            command = [*LCENGINE, "train", "--resume", str(run_dir)]
        else:
            command = [*LCENGINE, "train", "--algo", args.algo, "--epochs", str(args.epochs),
                       "--out", str(run_dir), *args.train_args]
            if args.schedule:
                command += ["--schedule", args.schedule]
            for name, value in config.items():
                command += [f"--{name}", str(value)]
        print(f"sample {k}: {json.dumps(config)}", flush=True)
        with open(args.root / f"sample-{k:03d}.log", "a") as log:
            code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
        rows = history(run_dir)
        record = {"sample": k, "config": config, "exit": code, "epochs": len(rows),
                  "best_test_error": min((r["test_error"] for r in rows), default=None),
                  "best_epoch": min(rows, key=lambda r: r["test_error"])["epoch"] if rows else None,
                  "final_test_error": rows[-1]["test_error"] if rows else None,
                  "final_train_error": rows[-1]["train_error"] if rows else None}
        if code == 130:        # Ctrl-C: leave the sample unfinished, to be resumed
            return code
        with open(summary, "a") as out:
            out.write(json.dumps(record) + "\n")
        print(f"  -> best test {record['best_test_error']} (epoch {record['best_epoch']}), "
              f"exit {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
