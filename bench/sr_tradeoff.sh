#!/usr/bin/env bash
# The super-resolution study behind the README's tables, sized for one GPU and a fixed time:
#
#   1. SRResNet x4 on the icons at the paper's size (16 blocks of 64), in variants trained side by
#      side for PHASE1_S seconds each (stopped by SIGTERM, which checkpoints at the current step):
#      batch norm or none, with or without the bicubic skip;
#   2. SRGAN from the variant with the best training PSNR, one run per content loss (mse,
#      random-cnn, emoji-convnet), side by side for PHASE2_S seconds;
#   3. `ganforge evaluate` of every run (held-out icons + the scikit-image photographs) and a
#      --compare strip of a photograph and an icon from each.
#
#   bash bench/sr_tradeoff.sh OUT_DIR [DEVICE] [PHASE1_S] [PHASE2_S] [BLOCKS]
#
# Writes OUT_DIR/results.tar.gz (every run without its checkpoints, the cards and the strips) and
# OUT_DIR/best-srresnet.tar.gz (the best SRResNet run with its weights).
set -u
OUT=${1:?usage: sr_tradeoff.sh OUT_DIR [DEVICE] [PHASE1_S] [PHASE2_S] [BLOCKS]}
DEVICE=${2:-cuda}
PHASE1_S=${3:-200}
PHASE2_S=${4:-180}
BLOCKS=${5:-16}
G="python3 -m ganforge"
RUNS=$(mktemp -d)/runs
mkdir -p "$RUNS" "$OUT"
COMMON="--device $DEVICE --quiet --set train.sample_every=0 --set train.checkpoint_every=1000000 --set train.steps=10000000 --set model.res_blocks=$BLOCKS --set train.log_every=100"

train_for() {  # seconds, run name, preset, overrides...
  local secs=$1 name=$2 preset=$3; shift 3
  timeout -s TERM "$secs" $G train "$preset" --out "$RUNS/$name" $COMMON "$@" > "$RUNS/$name.log" 2>&1
  echo "$name: $(tail -n 1 "$RUNS/$name.log")"
}

best_psnr() {  # mean training PSNR of the last five logged rows
  python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1]) if '\"psnr\"' in l][-5:]; print(sum(x['psnr'] for x in r)/max(len(r),1))" "$1/metrics.jsonl"
}

echo "phase 1: SRResNet variants, ${PHASE1_S}s each, side by side"
train_for "$PHASE1_S" bn-plain srresnet-icons-x4 --set model.norm=batch --set model.bicubic_skip=false &
train_for "$PHASE1_S" bn-skip srresnet-icons-x4 --set model.norm=batch --set model.bicubic_skip=true &
train_for "$PHASE1_S" none-plain srresnet-icons-x4 --set model.norm=none --set model.bicubic_skip=false &
train_for "$PHASE1_S" none-skip srresnet-icons-x4 --set model.norm=none --set model.bicubic_skip=true &
wait
best=""; best_value=-1
for name in bn-plain bn-skip none-plain none-skip; do
  v=$(best_psnr "$RUNS/$name"); echo "$name training PSNR $v"
  if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$v" "$best_value"; then
    best=$name; best_value=$v
  fi
done
echo "best: $best"
NORM=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['model']['norm'])" "$RUNS/$best/config.json")
SKIP=$(python3 -c "import json,sys; print(str(json.load(open(sys.argv[1]))['model']['bicubic_skip']).lower())" "$RUNS/$best/config.json")

echo "phase 2: SRGAN from $best, ${PHASE2_S}s each"
for content in mse random-cnn emoji-convnet; do
  train_for "$PHASE2_S" "srgan-$content" srgan-icons-x4 --set method.init_run="$RUNS/$best" \
    --set method.content=$content --set model.norm="$NORM" --set model.bicubic_skip="$SKIP" &
done
wait

echo "phase 3: evaluation"
PHOTO=$(python3 -c "import skimage, pathlib; print(pathlib.Path(skimage.__file__).parent / 'data' / 'astronaut.png')")
ICON=$(mktemp -d)/icon.png
python3 -c "
import dataclasses, sys
from ganforge.config import load_config
from ganforge.data import load_dataset
from ganforge.data.folders import save_png_file
cfg = load_config('srresnet-icons-x4')
d = load_dataset(dataclasses.replace(cfg.data, split='test'), log=lambda *_: None)
save_png_file(d.x[7], __import__('pathlib').Path(sys.argv[1]))" "$ICON"
for name in bn-plain bn-skip none-plain none-skip srgan-mse srgan-random-cnn srgan-emoji-convnet; do
  [ -d "$RUNS/$name" ] || continue
  ( $G evaluate "$RUNS/$name" --device "$DEVICE" > "$RUNS/$name.eval.txt" 2>&1
    $G upscale "$RUNS/$name" "$PHOTO" --compare --device "$DEVICE" -o "$RUNS/$name.photo.png" > /dev/null 2>&1
    $G upscale "$RUNS/$name" "$ICON" --compare --device "$DEVICE" -o "$RUNS/$name.icon.png" > /dev/null 2>&1 ) &
done
wait
for f in "$RUNS"/*.eval.txt; do echo "== $f"; cat "$f"; done
# The best SRResNet's weights come back (for pictures made elsewhere); no optimizer states, no other checkpoints.
rm -f "$RUNS"/*/checkpoints/*/train_state.safetensors
tar -czf "$OUT/best-srresnet.tar.gz" -C "$RUNS" "$best"
rm -rf "$RUNS"/*/checkpoints
tar -czf "$OUT/results.tar.gz" -C "$(dirname "$RUNS")" runs
ls -la "$OUT"
