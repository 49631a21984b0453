#!/usr/bin/env bash
# SDTP on MNIST-FC, alternating and parallel, by the paper's protocol (App. 5.3; docs paper.md
# §3.1): random search, the best configurations kept. For each schedule:
#   1. `lcengine sweep`: SAMPLES (60) configurations drawn at random from the table4-wide space,
#      each trained SEARCH_EPOCHS (20) epochs; the median rule stops a trial early (from epoch 4,
#      once 5 trials have finished) when its best test error is worse than the median of the
#      finished trials at the same epoch;
#   2. the TOP (3) best configurations trained again for LONG_EPOCHS (300, the paper-mnist
#      preset's) epochs as ordinary runs, the train error over all 60,000 images;
#   3. `lcengine report` of the long runs beside the paper's numbers (2.28 % alternating).
#
# The space is table4-wide (lcengine/sweep/spaces/table4-wide.toml), not the printed Table 4:
# Table 5's own MNIST-FC optima lie outside the printed ranges (SDTP-alternating's inverse
# learning rate is 9.57e-3, the printed range ends at 3e-4), and it searches the inverse Adam's
# β1 (0.9 or 0.99) and the local losses summed or averaged over units (--local-loss), the two
# choices an independent check of SDTP found to matter. SPACE=table4 runs the printed table.
#
#   bash bin/sdtp_search.sh
#
# Every step resumes: rerun the script and a stopped sweep or long run goes on where it stood;
# finished trials and runs cost nothing. More workers: `lcengine sweep --root
# RUNS/sweep-mnist-fc-sdtp-SCHEDULE` on any host that shares RUNS and DATA joins that sweep.
# Environment: DATA (prepared shards, default data/), RUNS (default runs/), MNIST_SOURCE, JOBS
# (trials trained at once, default 2), SAMPLES, SEARCH_EPOCHS, LONG_EPOCHS, TOP, SPACE,
# SCHEDULES ("alternating parallel"), SETTING (every run's data and size options; default the
# paper-mnist preset on DATA/mnist, with the search trials' train error over 10,000 images).
set -euo pipefail
# the lcengine of $PYTHON (default: the python3 first on PATH, an active venv's), not whatever
# `lcengine` script comes first on PATH
lcengine() { "${PYTHON:-python3}" -m lcengine "$@"; }
data=${DATA:-data}
runs=${RUNS:-runs}
jobs=${JOBS:-2}
samples=${SAMPLES:-60}
search_epochs=${SEARCH_EPOCHS:-20}
long_epochs=${LONG_EPOCHS:-300}
top=${TOP:-3}
space=${SPACE:-table4-wide}
read -r -a schedules <<< "${SCHEDULES:-alternating parallel}"
if [ -n "${SETTING:-}" ]; then
    read -r -a setting <<< "$SETTING"
else
    [ -f "$data/mnist/manifest.json" ] ||
        lcengine prep mnist --source "${MNIST_SOURCE:-../shared/data/mnist}" --out "$data/mnist"
    setting=(--preset paper-mnist --data "$data/mnist" --train-eval-images 10000)
fi

long_runs=()
for schedule in "${schedules[@]}"; do
    root=$runs/sweep-mnist-fc-sdtp-$schedule
    lcengine sweep --algo sdtp --schedule "$schedule" --arch fc "${setting[@]}" \
        --space "$space" --samples "$samples" --epochs "$search_epochs" \
        --prune median --prune-after 4 --root "$root" --jobs "$jobs" --presets "$top"
    for rank in $(seq 1 "$top"); do
        preset=$root/best.toml
        [ "$rank" = 1 ] || preset=$root/best-$rank.toml
        [ -f "$preset" ] || continue                    # fewer finished trials than TOP
        run=$runs/mnist-fc-sdtp-$schedule-search-$rank
        if [ -f "$run/config.toml" ]; then
            lcengine train --resume "$run" --epochs "$long_epochs"
        else
            lcengine train --config "$preset" --epochs "$long_epochs" --train-eval-images 0 \
                --out "$run"
        fi
        long_runs+=("$run")
    done
done
lcengine report "${long_runs[@]}" --markdown "$runs/sdtp-search.md"
