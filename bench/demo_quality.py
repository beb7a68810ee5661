"""The MNIST GANs' quality within their CPU budget: variants of dcgan-mnist (the demo) or
cgan-mnist over several seeds, each scored by the share of clear samples (mnist-lenet gives the
top class p >= 0.9), the conditional accuracy (cgan: the share classified as the class asked
for) or the code purity (infogan: the share that is its code's majority class), FID and the CPU
time of training.

    python bench/demo_quality.py [--preset dcgan-mnist|cgan-mnist|infogan-mnist] [--variants preset,ema,...]
                                 [--seeds 0,1,2] [--n-eval 10000]

Every variant trains the preset with its overrides (the preset's 2,400 steps unless a variant
sets train.steps), in this process, then evaluates 10,000 samples (seed 0) against the MNIST
test split in the canonical mnist-lenet. "CPU s" is this process's CPU time while training
(all threads), the budget the demo is held to; "wall s" the elapsed time. Per-seed values are
printed, then each variant's mean and spread (min-max).
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

VARIANTS = {
    "preset": [],
    "ema": ["method.ema_halflife_kimg=10"],
    "ema-4800": ["method.ema_halflife_kimg=10", "train.steps=4800"],
    "4800": ["train.steps=4800"],
    "2400": ["train.steps=2400"],  # cgan-mnist (4,800 steps) cut to the demo's 2,400
    "reuse": ["method.reuse_fakes=true"],
    "ema+reuse": ["method.ema_halflife_kimg=10", "method.reuse_fakes=true"],
    "ema+reuse-2800": ["method.ema_halflife_kimg=10", "method.reuse_fakes=true", "train.steps=2800"],
    "reuse-2800": ["method.reuse_fakes=true", "train.steps=2800"],
    "b64-4800": ["train.batch_size=64", "train.steps=4800"],
    "b32-9600": ["train.batch_size=32", "train.steps=9600"],
    "fp32": ["train.precision=fp32", "train.channels_last=false"],
    "b64-4800+reuse": ["train.batch_size=64", "train.steps=4800", "method.reuse_fakes=true"],
    "info0.2": ["method.info_weight=0.2"],  # infogan-mnist: a weaker pull of the code term
    # infogan-mnist with ClusterGAN's small noise beside the code: z ~ N(0, 0.1^2 I)
    "noise0.1": ["method.noise_scale=0.1"],
    # ... with Q also reading the noise back (ClusterGAN's encoder term, weight beta_n on the MSE of z)
    "noise0.1+rec0.1": ["method.noise_scale=0.1", "method.noise_weight=0.1"],
    "noise0.1+rec1": ["method.noise_scale=0.1", "method.noise_weight=1"],
    "decay": ["method.lr_schedule=linear", "method.lr_decay_start=0.5"],
    # dcgan-mnist conditioned on 100 k-means clusters of the pixels (Liu et al.'s MNIST setting), no labels
    "selfcond": ["method.name=selfcond", "method.clusters=100"],
    # deeper networks at 7x7 (model.g_extra_layers / d_extra_layers: 3x3 convs at the smallest resolution)
    "extra1": ["model.g_extra_layers=1", "model.d_extra_layers=1"],
    "extra1-1500": ["model.g_extra_layers=1", "model.d_extra_layers=1", "train.steps=1500"],  # ~ the demo's CPU time
    "g-extra1": ["model.g_extra_layers=1"],
    "d-extra1": ["model.d_extra_layers=1"],
    # lazy R1 on real digits (Mescheder et al. 2018), every 16 D steps as its own phase
    "r1": ["method.r1_gamma=1", "method.r1_every=16"],
    "decay+reuse-2800": ["method.lr_schedule=linear", "method.lr_decay_start=0.5",
                                       "method.reuse_fakes=true", "train.steps=2800"],
}


def one_run(preset: str, overrides: list[str], seed: int, n_eval: int) -> dict:
    cfg = load_config(preset, overrides + [f"train.seed={seed}", "train.sample_every=0",
                                                  "train.checkpoint_every=0"])
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run = ganforge.train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        card = ganforge.evaluate(run, n=n_eval, metrics=["fid", "pr", "classes"], log=lambda *_: None)
    m = card["metrics"]
    accuracy = m.get("conditional_accuracy", {}).get("value")
    purity = m.get("code_purity", {}).get("value")
    return {"seed": seed, "steps": cfg.train.steps, "cpu_s": round(cpu_s, 1), "wall_s": round(wall_s, 1),
            "clear": m["classes"]["confident"], "conditional_accuracy": accuracy, "code_purity": purity,
            "classes_seen": m["classes"]["classes_seen"],
            "fid": m["fid"]["value"], "precision": m["pr"]["precision"], "recall": m["pr"]["recall"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="dcgan-mnist", choices=["dcgan-mnist", "cgan-mnist", "infogan-mnist"])
    add_variant_arguments(ap, VARIANTS, "preset,ema,ema+reuse")
    ap.add_argument("--n-eval", type=int, default=10000)
    args = ap.parse_args()

    def describe(r):
        acc = f"  cond. acc {100 * r['conditional_accuracy']:5.2f}%" if r["conditional_accuracy"] else ""
        acc += f"  code purity {100 * r['code_purity']:5.2f}%" if r.get("code_purity") else ""
        return (f"clear {100 * r['clear']:5.1f}%{acc}  FID {r['fid']:6.1f}  P/R {r['precision']:.3f}/"
                f"{r['recall']:.3f}  classes {r['classes_seen']}  {r['steps']} steps  CPU {r['cpu_s']:.0f} s  "
                f"wall {r['wall_s']:.0f} s")

    out = run_variants(ap, args, VARIANTS, lambda overrides, seed: one_run(args.preset, overrides, seed, args.n_eval),
                       describe)
    if args.json:
        print(json.dumps(out))
        return 0
    print()
    conditional = args.preset == "cgan-mnist"
    print(f"{'variant':<24}{'clear % (min-max)':>22}" + (f"{'cond. acc % (min-max)':>26}" if conditional else "")
          + f"{'FID (min-max)':>24}{'CPU s':>8}")
    for variant, rows in out.items():
        accuracy = f"{spread([100 * r['conditional_accuracy'] for r in rows], '.2f'):>26}" if conditional else ""
        print(f"{variant:<24}{spread([100 * r['clear'] for r in rows]):>22}{accuracy}"
              f"{spread([r['fid'] for r in rows]):>24}"
              f"{statistics.mean(r['cpu_s'] for r in rows):>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
