#!/usr/bin/env bash
# StyleGAN against DCGAN on 64-px emoji at the same image budget, with the StyleGAN ablation, sized
# for one GPU and a fixed time:
#
#   1. side by side for TRAIN_S seconds (stopped by SIGTERM, which checkpoints at the current step):
#      stylegan-emoji as it ships, the same with no demodulation, no style-mixing regularisation and
#      no path-length regularisation, and dcgan-emoji; checkpoints every 17 kimg (StyleGAN) and 8
#      kimg (DCGAN) are kept, so that every run can be evaluated at a budget they all reached;
#   2. `ganforge evaluate` (10,000 samples against the test emoji in the emoji-convnet features):
#      the four StyleGAN runs at the largest step all four reached, the shipped StyleGAN at its last
#      step and at psi 0.5 / 0.7 / 0.85, DCGAN at its checkpoint nearest the shipped StyleGAN's
#      count of real pictures seen and at its own last step;
#   3. the pictures: samples, a psi sweep, style mixing (coarse, middle, fine), the noise figure,
#      samples without demodulation, DCGAN's samples;
#   4. throughput of both presets alone on the device (bench/throughput.py, the preset's precision
#      setting), then bench/vs_conventional.py on dcgan-mnist (one round, BENCH_S at most).
#
#   bash bench/stylegan_study.sh OUT_DIR [DEVICE] [TRAIN_S] [BENCH_S] [DEADLINE_S]
#
# DEADLINE_S (default 575) bounds the whole script: the evaluations and benchmarks get what is
# left of it (less the packing's 25 s), and a stage with under 10 s left is skipped.
#
# Writes OUT_DIR/study.tar.gz (every run without its checkpoints, the evaluation cards, the
# pictures, the logs) and OUT_DIR/stylegan-emoji-G.tar.gz (the shipped StyleGAN's last checkpoint).
set -u
OUT=${1:?usage: stylegan_study.sh OUT_DIR [DEVICE] [TRAIN_S] [BENCH_S] [DEADLINE_S]}
DEVICE=${2:-cuda}
TRAIN_S=${3:-330}
BENCH_S=${4:-70}
DEADLINE_S=${5:-575}
G="python3 -m ganforge"
WORK=$(mktemp -d)
RUNS=$WORK/runs
mkdir -p "$RUNS" "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
SG_EVERY=${SG_EVERY:-500}   # 500 steps x 34 real pictures (32 + R1's 32 every 16th step) = 17 kimg
DC_EVERY=${DC_EVERY:-100}   # 100 steps x 80 (64 + R1's 64 every 4th step) = 8 kimg
EVAL_N=${EVAL_N:-10000}
COMMON="--device $DEVICE --quiet --set train.checkpoint_minutes=0 --set train.keep_checkpoints=100"

. "$(dirname "$0")/study_lib.sh"

echo "phase 1: training, ${TRAIN_S}s, side by side"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
SG="--set train.checkpoint_every=$SG_EVERY --set train.sample_every=2000"
train_for "$TRAIN_S" sg stylegan-emoji $SG &
train_for "$TRAIN_S" sg-no-demod stylegan-emoji $SG --set model.demodulate=false &
train_for "$TRAIN_S" sg-no-mixing stylegan-emoji $SG --set method.mixing=0 &
train_for "$TRAIN_S" sg-no-pl stylegan-emoji $SG --set method.pl_weight=0 &
train_for "$TRAIN_S" dcgan dcgan-emoji --set train.checkpoint_every=$DC_EVERY &
wait
ls "$RUNS"/*/checkpoints | head -50

echo "phase 2: evaluation"
SG_LAST=$(checkpoint_step "$RUNS/sg" $SG_EVERY)
COMMON_STEP=$(common_step $SG_EVERY sg sg-no-demod sg-no-mixing sg-no-pl)
# The budget is the count of real pictures D saw (the lazy R1 phases' too), read from the checkpoints.
SG_IMAGES=$(images_at "$RUNS/sg" "$SG_LAST")
DC_MATCH=$(checkpoint_step "$RUNS/dcgan" "$DC_EVERY" "$SG_IMAGES")
echo "shipped StyleGAN's last step $SG_LAST ($SG_IMAGES real pictures); ablation at step $COMMON_STEP; DCGAN at step $DC_MATCH"
evaluate sg-last sg --step "$SG_LAST" &
evaluate sg-psi0.5 sg --step "$SG_LAST" --psi 0.5 &
evaluate sg-psi0.7 sg --step "$SG_LAST" --psi 0.7 &
evaluate sg-psi0.85 sg --step "$SG_LAST" --psi 0.85 &
evaluate dcgan-match dcgan --step "$DC_MATCH" &
evaluate dcgan-last dcgan &
for name in sg sg-no-demod sg-no-mixing sg-no-pl; do
  evaluate "ablation-$name" "$name" --step "$COMMON_STEP" &
done
P="$RUNS/pictures"
mkdir -p "$P"
( capped 150 $G sample "$RUNS/sg" --step "$SG_LAST" --device "$DEVICE" -n 64 -o "$P/sg_samples.png"
  capped 150 $G sample "$RUNS/sg" --step "$SG_LAST" --device "$DEVICE" --psi 0.7 -n 64 -o "$P/sg_samples_psi0.7.png"
  capped 150 $G sample "$RUNS/sg" --step "$SG_LAST" --device "$DEVICE" --psi-sweep 0.2,0.4,0.6,0.8,1.0 -n 6 -o "$P/sg_psi_sweep.png"
  for layers in coarse middle fine; do
    capped 150 $G style-mix "$RUNS/sg" --step "$SG_LAST" --device "$DEVICE" --layers $layers -o "$P/sg_mix_$layers.png"
  done
  capped 150 $G noise "$RUNS/sg" --step "$SG_LAST" --device "$DEVICE" --seed 3 -o "$P/sg_noise.png"
  capped 150 $G sample "$RUNS/sg-no-demod" --step "$COMMON_STEP" --device "$DEVICE" -n 64 -o "$P/sg_no_demod_samples.png"
  capped 150 $G sample "$RUNS/dcgan" --step "$DC_MATCH" --device "$DEVICE" -n 64 -o "$P/dcgan_samples_match.png"
  capped 150 $G sample "$RUNS/dcgan" --device "$DEVICE" -n 64 -o "$P/dcgan_samples_last.png" ) > "$RUNS/pictures.log" 2>&1 &
wait
for f in "$RUNS"/eval-*.json; do echo "== $f"; head -c 600 "$f"; echo; done

echo "phase 3: throughput alone on the device (each preset in its own precision setting)"
capped 60 python3 bench/throughput.py --preset stylegan-emoji --device "$DEVICE" --steps 100 --warmup 20 \
  --setting bf16 > "$RUNS/throughput-stylegan-emoji.json" 2>&1
capped 60 python3 bench/throughput.py --preset dcgan-emoji --device "$DEVICE" --steps 300 --warmup 60 \
  --setting "bf16 + channels_last" > "$RUNS/throughput-dcgan-emoji.json" 2>&1
tail -n 1 "$RUNS"/throughput-*.json
capped "$BENCH_S" python3 bench/vs_conventional.py --device "$DEVICE" --steps 600 --warmup 100 --rounds 1 \
  > "$RUNS/vs_conventional.txt" 2>&1
cat "$RUNS/vs_conventional.txt"

echo "packing at ${SECONDS}s"
# The shipped StyleGAN's last checkpoint comes back for pictures made elsewhere; no other checkpoint.
tar -czf "$OUT/study.tar.gz" -C "$WORK" --exclude='checkpoints' runs
CKPT=runs/sg/checkpoints/$(printf 'step_%09d' "$SG_LAST")
tar -cf "$WORK/sg.tar" -C "$WORK" --exclude='checkpoints' runs/sg
tar -rf "$WORK/sg.tar" -C "$WORK" "$CKPT/models.safetensors" "$CKPT/state.json"
gzip -c "$WORK/sg.tar" > "$OUT/stylegan-emoji-G.tar.gz"
ls -la "$OUT"
