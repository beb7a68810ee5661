"""Stacked MNIST mode coverage (PacGAN/VEEGAN protocol): variants of dcgan-stacked-mnist over seeds.

    python bench/stacked_modes.py [--variants preset,pack2,...] [--seeds 0,1,2] [--set key=value ...]
    python bench/stacked_modes.py --real      # the real test set's scores: the floor

Each (variant, seed) trains the preset with the variant's overrides in this process, then draws
26,000 samples (seed 0) and reads each channel with the canonical mnist-lenet: modes = distinct
3-digit labels (of 1,000), KL = KL(generated label histogram || uniform). The classifier is never
used in training. The real 26k test set scores 1,000 modes and KL 0.026, the finite-sample
floor. Prints a row per run (with the CPU time of training, all threads) and each variant's mean
and range.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import ganforge
from ganforge.config import load_config
from seed_runs import add_variant_arguments, run_variants, spread

# The preset before it gained minibatch std, the extra layers and R1: the plain DCGAN at constant
# learning rates. The variants measured against it build on it.
PLAIN = ["model.minibatch_std=0", "model.g_extra_layers=0", "model.d_extra_layers=0", "method.r1_gamma=0"]

VARIANTS = {
    "preset": [],  # minibatch std + one more 3x3 conv layer at 7x7 in G and D + lazy R1, constant LR
    # the preset before R1: LR decay over the second half instead
    "decay": ["method.r1_gamma=0", "method.lr_schedule=linear", "method.lr_decay_start=0.5"],
    "plain": PLAIN,
    "pack2": PLAIN + ["method.pack=2"],
    "ema": PLAIN + ["method.ema_halflife_kimg=10"],
    "pack2+ema": PLAIN + ["method.pack=2", "method.ema_halflife_kimg=10"],
    "ema-decay": PLAIN + ["method.ema_halflife_kimg=10", "method.lr_schedule=linear"],
    "mbstd": PLAIN + ["model.minibatch_std=4"],  # ProGAN's minibatch standard deviation before D's last layer
    "mbstd-24k": PLAIN + ["model.minibatch_std=4", "train.steps=24000"],  # twice as long (constant LR)
    "24k": PLAIN + ["train.steps=24000"],
    # minibatch std with one more 3x3 conv layer at 7x7 in G and in D (model.*_extra_layers), constant LR
    "mbstd+extra1": PLAIN + ["model.minibatch_std=4", "model.g_extra_layers=1", "model.d_extra_layers=1"],
    "preset-8k": ["train.steps=8000"],  # the preset's first 8,000 steps (constant LR: the same run)
}


def one_run(overrides: list[str], seed: int) -> dict:
    cfg = load_config("dcgan-stacked-mnist", overrides + [f"train.seed={seed}", "train.sample_every=0",
                                                          "train.checkpoint_every=0"])
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run = ganforge.train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        modes = ganforge.evaluate(run, n=26000, log=lambda *_: None)["metrics"]["modes"]
    return {"seed": seed, "steps": cfg.train.steps, "cpu_s": round(cpu_s, 1), "wall_s": round(wall_s, 1),
            "modes": modes["modes"], "kl": modes["kl_uniform"]}


def real_floor() -> dict:
    """The protocol applied to the real Stacked MNIST test set (26,000 pictures): the scores a
    perfect generator would get from 26,000 samples."""
    from ganforge.data.sources import stacked_mnist
    from ganforge.evaluation import stacked_scores
    from ganforge.metrics.features import load_extractor

    real = stacked_mnist("test", log=lambda *_: None).x.float() / 127.5 - 1  # uint8 -> [-1, 1]
    return stacked_scores(load_extractor("mnist-lenet", log=lambda *_: None), real)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_variant_arguments(ap, VARIANTS, "preset,plain")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="added to every variant")
    ap.add_argument("--real", action="store_true",
                    help="score the real 26k test set instead (the finite-sample floor) and exit")
    args = ap.parse_args()
    if args.real:
        print(json.dumps(real_floor(), indent=1))
        return 0
    out = run_variants(ap, args, VARIANTS, lambda overrides, seed: one_run(overrides + args.set, seed),
                       lambda r: f"modes {r['modes']:>4}  KL {r['kl']:.3f}  {r['steps']} steps  "
                                 f"CPU {r['cpu_s']:.0f} s  wall {r['wall_s']:.0f} s")
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"\n{'variant':<14}{'modes (min-max)':>20}{'KL (min-max)':>24}{'CPU s':>8}")
    for variant, rows in out.items():
        print(f"{variant:<14}{spread([r['modes'] for r in rows]):>20}{spread([r['kl'] for r in rows], '.3f'):>24}"
              f"{statistics.mean(r['cpu_s'] for r in rows):>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
