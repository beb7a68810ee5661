"""The GAN games side by side on MNIST at the same image budget: FID and time for each.

    python bench/gan_losses.py [--kimg 128] [--n-eval 10000] [--json]

Every row trains the DCGAN of the dcgan-mnist preset (bf16, channels_last, batch 64) until D has
seen --kimg thousand real images (WGAN-GP's 5 critic steps mean 5x fewer generator steps), then
evaluates 10,000 samples against the MNIST test split in mnist-lenet features (not Inception).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ganforge
from ganforge.config import load_config

GAMES = {
    "MM-GAN": ["method.loss=mm"],
    "NS-GAN": ["method.loss=ns"],
    "WGAN-GP": ["method.name=wgan-gp", "model.d_norm=layer"],
    "hinge": ["method.loss=hinge"],
    "hinge + spectral norm": ["method.loss=hinge", "model.spectral_norm=true", "model.d_norm=none"],
    "LSGAN": ["method.loss=lsgan"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kimg", type=float, default=128)
    ap.add_argument("--n-eval", type=int, default=10000)
    ap.add_argument("--games", default=",".join(GAMES))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    rows = []
    for game in args.games.split(","):
        base = load_config("dcgan-mnist", ["train.batch_size=64"] + GAMES[game])
        steps = int(args.kimg * 1000 / (64 * base.method.d_steps))
        cfg = load_config("dcgan-mnist", ["train.batch_size=64", f"train.steps={steps}", "train.sample_every=0",
                                          "train.checkpoint_every=0"] + GAMES[game])
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run = ganforge.train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
            train_s = time.perf_counter() - t0
            card = ganforge.evaluate(run, n=args.n_eval, metrics=["fid", "pr"], log=lambda *_: None)
        m = card["metrics"]
        rows.append({"game": game, "steps": steps, "kimg": card["kimg"], "train_s": round(train_s, 1),
                     "fid": m["fid"]["value"], "fid_ci": [m["fid"]["ci_low"], m["fid"]["ci_high"]],
                     "precision": m["pr"]["precision"], "recall": m["pr"]["recall"]})
        if not args.json:
            r = rows[-1]
            print(f"{game:<22} {steps:>5} steps {r['kimg']:6.1f} kimg {train_s:6.0f} s  FID {r['fid']:7.1f} "
                  f"({r['fid_ci'][0]:.1f}-{r['fid_ci'][1]:.1f})  P/R {r['precision']:.3f}/{r['recall']:.3f}",
                  flush=True)
    if args.json:
        print(json.dumps({"kimg": args.kimg, "n_eval": args.n_eval, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
