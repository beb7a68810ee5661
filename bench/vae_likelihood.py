"""MNIST VAE test likelihood (dynamically binarised MNIST): variants of vae-mlp-mnist over seeds.

    python bench/vae_likelihood.py [--variants preset,iw5,...] [--seeds 0,1,2] [--k 5000] [--n N]

Each (variant, seed) trains the preset with the variant's overrides in this process, then
estimates the test negative log-likelihood by importance sampling (k = 5,000 samples of q(z|x)
per image, all 10,000 test images unless --n) and the test -ELBO, in nats, as
`ganforge likelihood RUN -k 5000` does. Published (Burda et al. 2016, one stochastic layer of 50):
VAE 86.76, IWAE k = 5 85.54, IWAE k = 50 84.78. Prints a row per run with the CPU time of
training (all threads), then each variant's mean and range.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import ganforge
from ganforge.autoencoding import likelihood
from ganforge.config import load_config
from seed_runs import add_variant_arguments, run_variants, spread

VARIANTS = {
    "preset": [],
    "decay": ["method.lr_schedule=linear"],
    "decay-bf16": ["method.lr_schedule=linear", "train.precision=bf16"],
    "iw5-decay-bf16": ["method.iw_samples=5", "method.lr_schedule=linear", "train.precision=bf16"],
}


def one_run(overrides: list[str], seed: int, k: int, n: int | None) -> dict:
    cfg = load_config("vae-mlp-mnist", overrides + [f"train.seed={seed}", "train.sample_every=0",
                                                    "train.checkpoint_every=0"])
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run = ganforge.train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        card = likelihood(ganforge.load_run(run), k=k, n=n, log=lambda *_: None)
    return {"seed": seed, "steps": cfg.train.steps, "cpu_s": round(cpu_s, 1), "wall_s": round(wall_s, 1),
            "nll": card["nll"], "nll_se": card["nll_se"], "neg_elbo": card["neg_elbo"], "n": card["n"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_variant_arguments(ap, VARIANTS, "preset,iw5-decay-bf16")
    ap.add_argument("--k", type=int, default=5000)
    ap.add_argument("--n", type=int, default=None, help="the first N test images (default: all 10,000)")
    args = ap.parse_args()
    out = run_variants(ap, args, VARIANTS, lambda overrides, seed: one_run(overrides, seed, args.k, args.n),
                       lambda r: f"NLL {r['nll']:.2f} +- {r['nll_se']:.2f}  -ELBO {r['neg_elbo']:.2f}  "
                                 f"({r['n']} images)  CPU {r['cpu_s']:.0f} s  wall {r['wall_s']:.0f} s")
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"\n{'variant':<16}{'NLL (min-max)':>24}{'-ELBO':>10}{'CPU s':>8}")
    for variant, rows in out.items():
        print(f"{variant:<16}{spread([r['nll'] for r in rows], '.2f'):>24}"
              f"{statistics.mean(r['neg_elbo'] for r in rows):>12.2f}"
              f"{statistics.mean(r['cpu_s'] for r in rows):>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
