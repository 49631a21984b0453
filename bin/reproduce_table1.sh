#!/usr/bin/env bash
# Table 1's MNIST-LC, CIFAR-10 FC and CIFAR-10 LC columns, and the BP-ConvNet baselines: the exact
# commands behind docs/results.md. Every cell is one single-threaded run (--threads 1, the
# default), the paper's protocol (the paper-* presets: batch 100, train error over the whole
# training set, CIFAR-10 with random crops and flips), Table 5's hyper-parameters for its
# (dataset, arch, rule), the alternating schedule for the TP family. Beside the paper's rules, the
# ones that came after it (docs/rules.md): sign-symmetry (usf, brsf, frsf) and Kolen-Pollack (kp)
# on MNIST-FC, MNIST-LC and CIFAR-FC, usf and kp on CIFAR-LC, with FA's Table 5 values (they
# have no column of their own; lcengine/paper_hyperparams.py). The MNIST-FC rows of
# docs/results.md ran at batch 32 (bin/reproduce_mnist_fc.sh), so MNIST-FC's BP and FA run here
# again under this protocol, as the new rules' reference.
#
#   bash bin/reproduce_table1.sh [PATTERN ...]
#
# runs every cell whose name matches one of the shell PATTERNs (default: all), in order. A cell
# whose run directory exists is resumed where it stands (`lcengine train --resume`), and a finished
# one costs nothing, so the script can be stopped and rerun at will; two copies given disjoint
# patterns share a 2-core machine. Environment: DATA (prepared shards, default data/), RUNS (run
# directories, default runs/), MNIST_SOURCE and CIFAR_SOURCE (the official files to prepare from).
#
# Epochs: MNIST-FC, MNIST-LC and CIFAR-FC 100, CIFAR-LC 20 (an alternating TP epoch is one inverse
# pass and one forward pass); CIFAR-FC's BP, FA and DFA then go on to the paper's 500 (at 100 they
# still underfit: train error 37-47 % against the paper's 26-33 %), after every CIFAR-FC rule has
# its first 100. Extend a cell by hand with `lcengine train --resume RUN --epochs N`.
set -euo pipefail
# the lcengine of $PYTHON (default: the python3 first on PATH, an active venv's), not whatever
# `lcengine` script comes first on PATH
lcengine() { "${PYTHON:-python3}" -m lcengine "$@"; }
data=${DATA:-data}
runs=${RUNS:-runs}
patterns=("$@")
[ ${#patterns[@]} -gt 0 ] || patterns=('*')

[ -f "$data/mnist/manifest.json" ] ||
    lcengine prep mnist --source "${MNIST_SOURCE:-../shared/data/mnist}" --out "$data/mnist"
[ -f "$data/cifar10/manifest.json" ] ||
    lcengine prep cifar10 --source "${CIFAR_SOURCE:-../shared/data/cifar10/cifar-10-jpeg.tar.gz}" \
        --out "$data/cifar10"

# cell NAME OPTIONS...: train runs/NAME with OPTIONS, or resume it (to the --epochs in OPTIONS
# when that is more than the run was asked for: raising a budget here extends the cell).
cell() {
    local name=$1 pattern arg previous="" epochs=0 asked
    shift
    for arg in "$@"; do
        [ "$previous" != --epochs ] || epochs=$arg
        previous=$arg
    done
    for pattern in "${patterns[@]}"; do
        # shellcheck disable=SC2053  # the pattern is a glob on purpose
        if [[ $name == $pattern ]]; then
            if [ -f "$runs/$name/config.toml" ]; then
                asked=$(sed -n 's/^epochs = //p' "$runs/$name/config.toml")
                if [ "$epochs" -gt "$asked" ]; then
                    lcengine train --resume "$runs/$name" --epochs "$epochs"
                else
                    lcengine train --resume "$runs/$name"
                fi
            else
                lcengine train "$@" --out "$runs/$name"
            fi
            return
        fi
    done
}

mnist=(--preset paper-mnist --data "$data/mnist" --epochs 100)
cifar=(--preset paper-cifar10 --data "$data/cifar10")
after_paper=(usf brsf frsf kp)

for algo in bp fa "${after_paper[@]}"; do
    cell "mnist-fc-$algo" "${mnist[@]}" --arch fc --algo "$algo"
done

for algo in bp fa dfa dtp sdtp ao-sdtp "${after_paper[@]}"; do
    cell "mnist-lc-$algo" "${mnist[@]}" --arch lc --algo "$algo"
done
cell mnist-conv-bp "${mnist[@]}" --arch conv --algo bp

for algo in bp fa dfa dtp sdtp ao-sdtp "${after_paper[@]}"; do
    cell "cifar-fc-$algo" "${cifar[@]}" --epochs 100 --arch fc --algo "$algo"
done
for algo in bp fa dfa; do
    cell "cifar-fc-$algo" "${cifar[@]}" --epochs 500 --arch fc --algo "$algo"
done

for algo in bp fa dfa dtp sdtp ao-sdtp usf kp; do
    cell "cifar-lc-$algo" "${cifar[@]}" --epochs 20 --arch lc --algo "$algo"
done
cell cifar-conv-bp "${cifar[@]}" --epochs 20 --arch conv --algo bp
