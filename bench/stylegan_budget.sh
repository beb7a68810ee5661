#!/usr/bin/env bash
# stylegan-emoji towards its full budget (12,000 steps) on one GPU, in legs of a fixed time, with
# the networks compiled (train.compile: the eager step is bound by kernel launches there):
#
#   1. side by side for TRAIN_S seconds (stopped by SIGTERM, which checkpoints at the current step):
#        sg            stylegan-emoji with train.compile=true (continued from FROM when given),
#        sg-eager      the same uncompiled, from scratch: its steps/s beside sg's, on the same shared
#                      device, is what compiling buys,
#        sg-no-demod, sg-no-mixing, sg-no-pl   the ablation, compiled, from scratch,
#        dcgan         dcgan-emoji, from scratch (it reaches its own full budget within the leg);
#   2. `ganforge evaluate` (10,000 samples against the test emoji, emoji-convnet features) of the
#      four compiled StyleGAN runs at the largest step all four reached, and of DCGAN at its
#      checkpoint nearest that step's count of real pictures and at its last step; the samples of
#      the run without demodulation;
#   3. packing: OUT/study.tar.gz (every run without its checkpoints, the evaluation cards, logs)
#      and sg's last checkpoint, whole (weights, optimizer moments, RNG, batch position), as
#      OUT/sg-ckpt.tar.part-aa, -ab, ... (15 MB pieces): the next leg continues from it, with
#      exact resume, and the pictures and evaluations at the end are made from it on any machine.
#
#   bash bench/stylegan_budget.sh OUT_DIR [DEVICE] [TRAIN_S] [DEADLINE_S] [FROM_DIR]
#
# Environment: SG_EVERY, DC_EVERY (checkpoint intervals), EVAL_N, COMPILE (false: a dry run on a
# CPU). FROM_DIR holds a previous leg's sg-ckpt.tar.part-* and study.tar.gz, or is the folder a
# previous leg worked in on this machine (printed as it starts; a warm device keeps it). A later
# leg trains sg alone and skips the evaluation: evaluate its last checkpoint wherever it lands.
# DEADLINE_S (default 575) bounds the whole script as in stylegan_study.sh.
set -u
OUT=${1:?usage: stylegan_budget.sh OUT_DIR [DEVICE] [TRAIN_S] [DEADLINE_S] [FROM_DIR]}
DEVICE=${2:-cuda}
TRAIN_S=${3:-400}
DEADLINE_S=${4:-575}
FROM=${5:-}
G="python3 -m ganforge"
WORK=$(mktemp -d)
RUNS=$WORK/runs
mkdir -p "$RUNS" "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
SG_EVERY=${SG_EVERY:-500}
DC_EVERY=${DC_EVERY:-100}
EVAL_N=${EVAL_N:-10000}
COMPILE=${COMPILE:-true}   # false: a dry run of the script on a CPU
COMMON="--device $DEVICE --quiet --set train.checkpoint_minutes=0 --set train.keep_checkpoints=100"
. "$(dirname "$0")/study_lib.sh"

if [ -d "$FROM/runs/sg/checkpoints" ]; then  # a previous leg's WORK folder on this machine: continue in it
  WORK=$FROM
  RUNS=$WORK/runs
  mv "$RUNS/sg.log" "$RUNS/sg.leg-before-$(date +%s).log"
elif [ -n "$FROM" ]; then  # the previous leg's packed sg run: its files, then its last checkpoint
  tar -xzf "$FROM/study.tar.gz" -C "$WORK" runs/sg runs/sg.log
  mv "$RUNS/sg.log" "$RUNS/sg.leg-before.log"
  cat "$FROM"/sg-ckpt.tar.part-* | tar -xf - -C "$WORK"
fi
echo "working in $WORK (a later leg on this machine: FROM_DIR=$WORK)"
[ -n "$FROM" ] && echo "continuing sg from $(ls "$RUNS/sg/checkpoints" | tail -n 1)"

echo "phase 1: training, ${TRAIN_S}s, side by side"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
SG="--set train.checkpoint_every=$SG_EVERY --set train.sample_every=2000"
train_for "$TRAIN_S" sg stylegan-emoji $SG --set train.compile=$COMPILE &
if [ -z "$FROM" ]; then  # a later leg gives the device to sg alone
  train_for "$TRAIN_S" sg-eager stylegan-emoji $SG &
  for ablation in "no-demod model.demodulate=false" "no-mixing method.mixing=0" "no-pl method.pl_weight=0"; do
    set -- $ablation
    train_for "$TRAIN_S" "sg-$1" stylegan-emoji $SG --set train.compile=$COMPILE --set "$2" &
  done
  train_for "$TRAIN_S" dcgan dcgan-emoji --set train.checkpoint_every=$DC_EVERY &
fi
wait
for run in "$RUNS"/sg*/; do  # img/s over the second half of the leg's log rows
  python3 - "$run" <<'EOF'
import json, sys
from pathlib import Path
rows = [json.loads(line) for line in (Path(sys.argv[1]) / "metrics.jsonl").open() if '"img_per_s"' in line]
tail = rows[len(rows) // 2:]
if not tail:
    sys.exit(f"{Path(sys.argv[1]).name}: no log row yet")
print(f"{Path(sys.argv[1]).name}: step {rows[-1]['step']}, {rows[-1]['kimg']} kimg, "
      f"{sum(r['img_per_s'] for r in tail) / len(tail):.0f} img/s over its last {len(tail)} log rows")
EOF
done

if [ -z "$FROM" ]; then  # the ablation and DCGAN ran in the first leg only
  echo "phase 2: evaluation"
  COMMON_STEP=$(common_step $SG_EVERY sg sg-no-demod sg-no-mixing sg-no-pl)
  SG_IMAGES=$(images_at "$RUNS/sg" "$COMMON_STEP")
  DC_MATCH=$(checkpoint_step "$RUNS/dcgan" "$DC_EVERY" "$SG_IMAGES")
  echo "ablation at step $COMMON_STEP ($SG_IMAGES real pictures); DCGAN at step $DC_MATCH"
  for name in sg sg-no-demod sg-no-mixing sg-no-pl; do
    evaluate "ablation-$name" "$name" --step "$COMMON_STEP" &
  done
  evaluate dcgan-match dcgan --step "$DC_MATCH" &
  evaluate dcgan-last dcgan &
  capped 150 $G sample "$RUNS/sg-no-demod" --step "$COMMON_STEP" --device "$DEVICE" -n 64 \
    -o "$RUNS/sg_no_demod_samples.png" > "$RUNS/pictures.log" 2>&1 &
  wait
  for f in "$RUNS"/eval-*.json; do echo "== $f"; head -c 400 "$f"; echo; done
fi

echo "packing at ${SECONDS}s"
if [ -n "$FROM" ]; then  # the ablation and DCGAN came back with the first leg
  tar -czf "$OUT/study.tar.gz" -C "$WORK" --exclude='checkpoints' runs/sg runs/sg.log
else
  tar -czf "$OUT/study.tar.gz" -C "$WORK" --exclude='checkpoints' runs
fi
LAST=runs/sg/checkpoints/$(printf 'step_%09d' "$(checkpoint_step "$RUNS/sg" 1)")
tar -cf - -C "$WORK" "$LAST" | split -b 15m - "$OUT/sg-ckpt.tar.part-"
ls -la "$OUT"
