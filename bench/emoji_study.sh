#!/usr/bin/env bash
# The emoji study (issue 31), step by step in the order it runs: the data, the screen of
# dcgan-emoji's augmentation, the equal-time study on the whole set (10, 20 and 40 minutes, three
# seeds), and ADA on a 1,000-image subset (30 minutes, three seeds). Hours of a quiet machine:
# every step resumes unit by unit (bench/equal_time.py keeps finished units in --units and a
# running one at each checkpoint under --state), so rerun this script after an interruption.
# Run it from a worktree pinned at the commit it measures (kept work is reused only while the
# code is unchanged), with nothing else running: the units are timed.
#
#     bench/emoji_study.sh [screen|study|subset|all]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$PWD/mlflow.db}"
py=.venv/bin/python
what="${1:-all}"
state="${LATENTFORGE_BENCH_STATE:-$PWD/.bench-state}"

.venv/bin/latentforge data --dataset emoji >/dev/null
.venv/bin/latentforge data --dataset emoji --max-images 1000 --dataset-name emoji_1k >/dev/null

if [[ $what == screen || $what == all ]]; then
  # which augmentation dcgan-emoji trains with: 10 minutes on screening seeds the study does not report
  "$py" bench/equal_time.py --dataset emoji --name emoji_screen --seconds 600 --budgets 1 --seeds 10,11 \
    --models dcgan-emoji+augment=none,dcgan-emoji+augment=ada,dcgan-emoji+augment=diffaugment \
    --results bench/results/emoji_screen.json --units bench/results/emoji_screen_units --state "$state/emoji_screen"
fi
if [[ $what == study || $what == all ]]; then
  "$py" bench/equal_time.py --dataset emoji --name emoji_study --seconds 600 --budgets 1,2,4 --seeds 0,1,2 \
    --models peer-ada,stylegan-emoji,dcgan-emoji \
    --results bench/results/emoji_study.json --units bench/results/emoji_study_units --state "$state/emoji_study"
fi
if [[ $what == subset || $what == all ]]; then
  "$py" bench/equal_time.py --dataset emoji_1k --name emoji_ada_subset --seconds 1800 --budgets 1 --seeds 0,1,2 \
    --models stylegan-emoji+augment=none,stylegan-emoji \
    --results bench/results/emoji_ada_subset.json --units bench/results/emoji_ada_subset_units \
    --state "$state/emoji_ada_subset"
fi
