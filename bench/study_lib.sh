# Helpers shared by the GPU study scripts (sourced; they read G, RUNS, COMMON, DEVICE, EVAL_N and
# DEADLINE_S).

capped() {  # seconds at most, command...: run it within what is left of DEADLINE_S
  local cap=$1; shift
  local left=$((DEADLINE_S - SECONDS - 25))
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -lt 10 ]; then echo "skipped (out of time): $*"; return 124; fi
  timeout "$cap" "$@"
}

train_for() {  # seconds, run name, preset, overrides...: train for that long, or continue the run where
  # RUNS/name already has a checkpoint (a later leg). A run that fails early with train.compile=true
  # (a device whose compiler does not work) is tried again uncompiled for the time left.
  local secs=$1 name=$2 preset=$3; shift 3
  local start=$SECONDS rc log="$RUNS/$name.log"
  if [ -d "$RUNS/$name/checkpoints" ]; then
    timeout -s TERM "$secs" $G train --resume "$RUNS/$name" $COMMON > "$log" 2>&1
  else
    timeout -s TERM "$secs" $G train "$preset" --out "$RUNS/$name" $COMMON "$@" > "$log" 2>&1
  fi
  rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q '"compile": true' "$RUNS/$name/config.json" 2>/dev/null \
      && [ $((secs - SECONDS + start)) -gt 60 ]; then
    echo "$name: rc $rc with train.compile, again uncompiled: $(tail -n 1 "$log")"
    mv "$log" "$log.compiled"
    if [ -d "$RUNS/$name/checkpoints" ]; then
      timeout -s TERM $((secs - SECONDS + start)) $G train --resume "$RUNS/$name" $COMMON \
        --set train.compile=false > "$log" 2>&1
    else
      rm -rf "${RUNS:?}/$name"
      timeout -s TERM $((secs - SECONDS + start)) $G train "$preset" --out "$RUNS/$name" $COMMON "$@" \
        --set train.compile=false > "$log" 2>&1
    fi
    rc=$?
  fi
  echo "$name: rc $rc $(tail -n 1 "$log")"
}

checkpoint_step() {  # run, every, [images]: the step of the run's newest checkpoint at a multiple of
  # every (else its newest), or with images: of the checkpoint whose count of real pictures is nearest
  python3 - "$@" <<'EOF'
import sys
from ganforge.train.checkpoint import list_checkpoints, read_state
run, every = sys.argv[1], int(sys.argv[2])
seen = {(s := read_state(c))["step"]: s["images_seen"] for c in list_checkpoints(run)}
if len(sys.argv) > 3:
    print(min(seen, key=lambda step: abs(seen[step] - int(sys.argv[3]))) if seen else 0)
else:
    print(max([s for s in seen if s % every == 0] or seen or [0]))
EOF
}

images_at() {  # run, step: real pictures seen at that checkpoint
  python3 -c "import sys; from ganforge.train.checkpoint import read_state; from pathlib import Path
print(read_state(Path(sys.argv[1]) / 'checkpoints' / f'step_{int(sys.argv[2]):09d}')['images_seen'])" "$1" "$2"
}

common_step() {  # every, run...: the largest step at a multiple of every that all the runs checkpointed
  local every=$1 step s run; shift
  step=$(checkpoint_step "$RUNS/$1" "$every")
  for run in "$@"; do
    s=$(checkpoint_step "$RUNS/$run" "$every")
    [ "$s" -lt "$step" ] && step=$s
  done
  echo "$step"
}

evaluate() {  # name, run, args...: `ganforge evaluate` into RUNS/eval-name.json
  local name=$1 run=$2; shift 2
  capped 150 $G evaluate "$RUNS/$run" --device "$DEVICE" -n "$EVAL_N" --json "$@" > "$RUNS/eval-$name.json" 2> "$RUNS/eval-$name.err"
  echo "eval $name: rc $?"
}
