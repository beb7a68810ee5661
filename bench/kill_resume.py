"""Kill/resume trials: stop a training at a random moment, resume it, compare with a straight run.

    python bench/kill_resume.py [--trials 12] [--steps 20000] [--seed 0]

Each trial starts `ganforge train toy-ring` in its own process, sends it SIGKILL, SIGTERM or
SIGINT (in turn) 4-20 seconds later, runs `ganforge train --resume`, and compares the final
weights with those of one uninterrupted run, tensor by tensor. SIGKILL leaves the last periodic
checkpoint; SIGTERM and SIGINT make the run save one at the step it reached (exit 143 / 130).
A trial whose run finished before the signal is not counted. Prints one line per trial and the
counts of bit-identical results per signal.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from ganforge.train import checkpoint as ckpt_io

SMALL = ["model.g_width=32", "model.d_width=32", "model.g_depth=2", "model.d_depth=2", "train.batch_size=64",
         "train.log_every=10", "train.sample_every=0", "data.toy_points=5000", "method.ema_halflife_kimg=2",
         "method.d_steps=2", "train.checkpoint_every=1000"]
SIGNALS = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt_io.latest_checkpoint(run) / "models.safetensors"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    ganforge = [sys.executable, "-m", "ganforge"]
    sets = [a for o in SMALL + [f"train.steps={args.steps}"] for a in ("--set", o)]
    rng = random.Random(args.seed)
    counts = {s.name: [0, 0] for s in SIGNALS}  # signal -> [identical, counted]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(ganforge + ["train", "toy-ring", "--quiet", *sets, "--out", str(root / "straight")],
                       check=True, capture_output=True)
        reference = final_weights(root / "straight")
        for trial in range(args.trials):
            sig, out = SIGNALS[trial % len(SIGNALS)], root / f"trial{trial}"
            proc = subprocess.Popen(ganforge + ["train", "toy-ring", "--quiet", *sets, "--out", str(out)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(rng.uniform(4.0, 20.0))
            proc.send_signal(sig)
            _, err = proc.communicate()
            if proc.returncode == 0:
                print(f"{sig.name}: the run finished before the signal; not counted", flush=True)
                continue
            resumed = subprocess.run(ganforge + ["train", "--resume", str(out), "--quiet"], capture_output=True)
            weights = final_weights(out) if resumed.returncode == 0 else {}
            same = weights.keys() == reference.keys() and all(torch.equal(weights[k], reference[k]) for k in weights)
            counts[sig.name][0] += same
            counts[sig.name][1] += 1
            said = err.strip().splitlines()[-1] if err.strip() else ""
            print(f"{sig.name}: exit {proc.returncode}, resume exit {resumed.returncode}, bit-identical {same}  "
                  f"{said}", flush=True)
    for name, (same, n) in counts.items():
        print(f"{name}: {same}/{n} bit-identical after resume")


if __name__ == "__main__":
    main()
