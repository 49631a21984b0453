#!/usr/bin/env python
"""Why an SDTP run stalls: the top inverse g_L, the penultimate targets, the local losses.

`checkpoint RUN_DIR`: on the first training images of RUN_DIR's newest checkpoint, per example:
  * g_L's loss ||h_{L−1} − g_L(p)||² on clean inputs, beside the best any function of the
    predicted class can do (the within-class spread of h_{L−1} around each predicted class's mean)
    and the total spread (what predicting the global mean scores);
  * ||δ||², δ = g_L(onehot) − g_L(p) = ĥ_{L−1} − h_{L−1}, and the part of it in the row space of
    W_L: the rest moves h_{L−1} along directions the top layer cannot see, so training on it does
    not change p and hence does not shrink δ (no feedback stops that drift);
  * with --refit STEPS, the same after training g_L alone for STEPS minibatches (Adam, --lr):
    how far g_L was from what it can reach, i.e. how stale the alternating schedule left it.

`trace`: a fresh run of a TP-family rule on MNIST, one parallel step per minibatch, printing
every --every steps the mean task loss and local losses (inv.k: g_{k+1}'s loss; fwd.k: layer
k+1's ||h − ĥ||²) and the largest |weight| of the top inverse: whether the difference targets
settle or run away.

    python bin/sdtp_diagnostics.py checkpoint runs/mnist-fc-sdtp-alt-lr1e-4-inv1e-4 --refit 1000
    python bin/sdtp_diagnostics.py trace --algo sdtp --steps 1100      # Table 5, SDTP-parallel
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lcengine import train as training
from lcengine.config import coerce, resolve
from lcengine.optim import Adam


def measure(run, x, labels) -> dict:
    rule, L = run.rule, run.rule.L
    h = run.net.forward(x).h[L - 1]
    p = rule.code(L, h)
    onehot = np.eye(p.shape[1], dtype=h.dtype)[labels]
    predicted = p.argmax(1)
    means = np.stack([h[predicted == k].mean(0) if (predicted == k).any() else h.mean(0)
                      for k in range(p.shape[1])])
    delta = rule.g(L, onehot) - rule.g(L, p)
    W_top = run.net.parameters()[f"{L - 1}.W"]
    basis, _ = np.linalg.qr(W_top.T if W_top.shape[0] == p.shape[1] else W_top)
    per_example = lambda a: float((a * a).sum(1).mean())
    return {"g_L loss": per_example(h - rule.g(L, p)),
            "class-mean loss": per_example(h - means[predicted]),
            "total spread": per_example(h - h.mean(0)),
            "|δ|²": per_example(delta),
            "|δ|² in rowspace(W_L)": per_example(delta @ basis)}


def refit(run, steps: int, lr: float) -> None:
    rule, L = run.rule, run.rule.L
    params = {f"inv.{L - 1}.{k}": v for k, v in rule.inverses[L].params.items()}
    adam = Adam(params, lr, 0.9, 0.999, 1e-8, backend=run.backend)
    for x, labels in training.take(run.train_loader, 0, 0, steps):
        grads = rule.inverse_gradients(run.net.forward(x), {})
        adam.step({k: g for k, g in grads.items() if k in params})


def checkpoint(args) -> None:
    state = training.read_checkpoint(args.run_dir)
    run = training.Run(training.saved_config(state))
    run.load_state(state["run"])
    if run.config.algo != "sdtp":
        raise SystemExit(f"{args.run_dir} is a {run.config.algo} run; this looks at SDTP's g_L")
    batches = -(-args.images // run.config.batch_size)
    x, labels = (np.concatenate(a)[:args.images] for a in
                 zip(*training.take(run.train_eval_loader, 0, 0, batches)))
    print("checkpoint:", {k: round(v, 2) for k, v in measure(run, x, labels).items()})
    if args.refit:
        refit(run, args.refit, args.lr)
        print(f"g_L refitted ({args.refit} steps, lr {args.lr:g}):",
              {k: round(v, 2) for k, v in measure(run, x, labels).items()})


def trace(args) -> None:
    given = {"algo": args.algo, "schedule": "parallel", "arch": "fc", "dataset": args.dataset}
    if args.dataset != "mnist-mini":
        given["data"] = str(args.data)
    for item in args.set:
        key, _, value = item.partition("=")
        name = key.replace("-", "_")
        given[name] = coerce(name, value, f"--set {key}")
    config, _ = resolve([("--set", given)])
    run = training.Run(config)
    top_inverse = run.rule.inverses[max(run.rule.inverses)]
    sums = {}
    for step, (x, labels) in enumerate(training.take(run.train_loader, 0, 0, args.steps), 1):
        result = training.train_step(run.rule, run.optimisers, x, labels, "both")
        for key, value in {"loss": result.loss, **result.info}.items():
            sums[key] = sums.get(key, 0.0) + float(value)
        if step % args.every == 0:
            means = {k: round(v / args.every, 2) for k, v in sums.items()}
            print(step, means, "max |V_top|",
                  round(float(np.abs(top_inverse.params["W"]).max()), 2), flush=True)
            sums = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("checkpoint", help="g_L and the targets of a run's checkpoint")
    one.add_argument("run_dir", type=Path)
    one.add_argument("--images", type=int, default=4000)
    one.add_argument("--refit", type=int, default=0, metavar="STEPS")
    one.add_argument("--lr", type=float, default=1e-3)
    two = commands.add_parser("trace", help="local losses of a fresh parallel run, step by step")
    two.add_argument("--algo", default="sdtp", choices=("tp", "dtp", "sdtp", "ao-sdtp"))
    two.add_argument("--dataset", default="mnist", choices=("mnist", "mnist-mini"))
    two.add_argument("--data", type=Path, default=Path("data/mnist"), help="prepared MNIST")
    two.add_argument("--steps", type=int, default=1100)
    two.add_argument("--every", type=int, default=100)
    two.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="a training option (e.g. lr=1e-4, inv_lr=3e-3, batch_size=100)")
    args = parser.parse_args()
    {"checkpoint": checkpoint, "trace": trace}[args.command](args)


if __name__ == "__main__":
    main()
