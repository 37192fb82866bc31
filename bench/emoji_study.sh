#!/usr/bin/env bash
# The emoji study (issue 31), step by step in the order it runs: the data, the training speed of
# every family at 64x64, the screen of dcgan-emoji's augmentation, the equal-time study on the
# whole set (10, 20 and 40 minutes, three seeds), ADA on a 1,000-image subset (30 minutes, three
# seeds), then `bin/run -P preset=stylegan-emoji` from a fresh clone, projections of held-out emoji
# by its champion, and the memory of preparing 50,000 images. Hours of a quiet machine: the study
# steps resume unit by unit (bench/equal_time.py keeps finished units in --units and a running one
# at each checkpoint under --state) and a finished champion run is kept, so rerun this script
# after an interruption.
# Run it with nothing else running: the units are timed. Kept work is reused only while the code
# (models/, pipeline/, contract/, export/, bench/ less bench/results/ where the units land) is
# unchanged and committed, so to work on the code meanwhile, run it from a worktree pinned at the
# commit it measures.
#
#     bench/emoji_study.sh [speed|screen|study|subset|champion|projection|memory|all]   (default: all)
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
  # scored at 10 and 20 minutes on the way to 30: those checkpoints are where an interrupted unit resumes
  step emoji_ada_subset --dataset emoji_1k --seconds 600 --budgets 1,2,3 --seeds 0,1,2 \
    --models stylegan-emoji+augment=none,stylegan-emoji
fi
# `bin/run -P preset=stylegan-emoji` end to end in a fresh clone (the dataset fetched, the extractor
# trained), kept in $state/first_run_stylegan_emoji: the projection step reads its champion
champion="$state/first_run_stylegan_emoji"
if [[ $what == champion || $what == all ]]; then
  if [[ ! -f $results/first_run_stylegan_emoji.json ]]; then
    rm -rf "$champion"
    "$py" bench/first_run.py --params preset=stylegan-emoji --name first_run_stylegan_emoji --work "$champion" \
      --results "$results/first_run_stylegan_emoji.json"
  fi
fi
if [[ $what == projection || $what == all ]]; then
  # held-out emoji projected by that champion, beside each image's nearest other real emoji
  MLFLOW_TRACKING_URI="sqlite:///$champion/fresh/mlflow.db" "$py" bench/projection.py \
    --model models:/emoji-stylegan@champion --tfds-dir "$champion/home/tensorflow_datasets" \
    --results "$results/projection.json"
fi
if [[ $what == memory || $what == all ]]; then
  # preparing 5,000 and 50,000 PNGs: the peak memory of the data stage and its workers
  "$py" bench/prepare_memory.py --results "$results/prepare_memory.json"
fi
