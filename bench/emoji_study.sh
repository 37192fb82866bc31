#!/usr/bin/env bash
# The emoji study (issue 31), step by step in the order it runs: the data, the training speed of
# every family at 64x64, the screen of dcgan-emoji's augmentation, the equal-time study on the
# whole set (10, 20 and 40 minutes, three seeds), and ADA on a 1,000-image subset (30 minutes,
# three seeds). Hours of a quiet machine: every step resumes unit by unit (bench/equal_time.py
# keeps finished units in --units and a running one at each checkpoint under --state), so rerun
# this script after an interruption.
# Run it from a worktree pinned at the commit it measures (kept work is reused only while the
# code is unchanged), with nothing else running: the units are timed.
#
#     bench/emoji_study.sh [speed|screen|study|subset|all]   (default: all)
#
# The study trains dcgan-emoji with the augmentation that scored the lowest median FID in the
# screen (its record, emoji_screen.json, must exist by then). Where things go:
#   LATENTFORGE_BENCH_RESULTS  records and finished units (default: bench/results of this tree)
#   LATENTFORGE_BENCH_STATE    the running units' checkpoints (default: .bench-state of this tree)
#   MLFLOW_TRACKING_URI        the store holding the registered feature extractors
set -euo pipefail
cd "$(dirname "$0")/.."
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$PWD/mlflow.db}"
py=.venv/bin/python
what="${1:-all}"
results="${LATENTFORGE_BENCH_RESULTS:-$PWD/bench/results}"
state="${LATENTFORGE_BENCH_STATE:-$PWD/.bench-state}"

.venv/bin/latentforge data --dataset emoji >/dev/null
.venv/bin/latentforge data --dataset emoji --max-images 1000 --dataset-name emoji_1k >/dev/null

step() {  # name, then equal_time.py's arguments
  local name=$1
  shift
  "$py" bench/equal_time.py --name "$name" "$@" \
    --results "$results/$name.json" --units "$results/${name}_units" --state "$state/$name"
}

if [[ $what == speed || $what == all ]]; then
  # training images/s of every family at 64x64 RGB beside the keras-io peer, interleaved in one run
  "$py" bench/train_speed.py --dataset emoji --name train_speed_emoji --rounds 4 --steps 5 \
    --models peer-ada,dcgan,cdcgan,gan,vae,ae,progan,stylegan --results "$results/train_speed_emoji.json"
fi
if [[ $what == screen || $what == all ]]; then
  # which augmentation dcgan-emoji trains with: 10 minutes on screening seeds the study does not report
  step emoji_screen --dataset emoji --seconds 600 --budgets 1 --seeds 10,11 \
    --models dcgan-emoji+augment=none,dcgan-emoji+augment=ada,dcgan-emoji+augment=diffaugment
fi
if [[ $what == study || $what == all ]]; then
  best=$("$py" -c 'import json, sys
rows = json.load(open(sys.argv[1]))["tables"]["summary"]
print(min(rows, key=lambda r: r["fid_median"])["model"])' "$results/emoji_screen.json")
  echo "emoji study: dcgan-emoji as $best (the screen's lowest median FID)"
  step emoji_study --dataset emoji --seconds 600 --budgets 1,2,4 --seeds 0,1,2 \
    --models "peer-ada,stylegan-emoji,$best"
fi
if [[ $what == subset || $what == all ]]; then
  step emoji_ada_subset --dataset emoji_1k --seconds 1800 --budgets 1 --seeds 0,1,2 \
    --models stylegan-emoji+augment=none,stylegan-emoji
fi
