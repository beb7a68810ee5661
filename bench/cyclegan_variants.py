"""CycleGAN variants over seeds on an emoji task, each scored both ways against the true pairs:
FID of the translations and of the untranslated inputs (the identity) against the real targets,
L1 and SSIM against the true counterpart, the cycle error and the CPU time of training.

    python bench/cyclegan_variants.py [--preset cyclegan-emoji-32] [--variants preset,skip,...]
                                      [--seeds 0,1,2] [--set KEY=VALUE ...]
    python bench/cyclegan_variants.py --floor    # real drawings of other emoji against the held-out ones

--floor trains nothing: it scores, in the same features and protocol, each vendor's own drawings of
as many training emoji (seeded draw) against its held-out drawings, and the other vendor's drawings
of the held-out emoji (the identity): what FID gives for the right style with other content; then
how well a linear probe on the same features tells the two vendors apart.

Every variant trains the preset with its overrides (and any --set), in this process, then runs
`ganforge evaluate` on all held-out pairs (617 emoji for emoji-google-twitter). A row per seed,
then per variant the mean and spread (min-max) of each direction's FID beside the identity's.
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
    "no-identity": ["method.identity_weight=0"],
    "no-cycle": ["method.cycle_weight=0"],
    "noise0.2": ["method.cycle_noise=0.2"],  # Gaussian noise on the way back of the cycle
    "skip": ["model.input_skip=true"],  # each G adds its input to its output
    "skip+sn": ["model.input_skip=true", "model.spectral_norm=true"],  # and spectrally normalised Ds
    "skip+r1": ["model.input_skip=true", "method.r1_gamma=1"],  # lazy R1 on both Ds
    "skip+sn+aug": ["model.input_skip=true", "model.spectral_norm=true", "method.augment=translation,cutout"],
    "r1": ["method.r1_gamma=1"],
    "aug": ["method.augment=translation,cutout"],  # DiffAugment on D's inputs
    "batch": ["model.norm=batch"],
    "ds1": ["model.g_downsamplings=1"],  # G's residual blocks at 16 x 16 instead of 8 x 8 (at 32 px)
    "ds0": ["model.g_downsamplings=0"],  # at 32 x 32: no strided or transposed convolution
    "ds1+batch": ["model.g_downsamplings=1", "model.norm=batch"],
    "ds1+batch-8k": ["model.g_downsamplings=1", "model.norm=batch", "train.steps=8000"],  # twice as long
}
DIRECTIONS = ("a2b", "b2a")


def one_run(preset: str, overrides: list[str], seed: int) -> dict:
    cfg = load_config(preset, overrides + [f"train.seed={seed}", "train.sample_every=0", "train.checkpoint_every=0"])
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run = ganforge.train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        m = ganforge.evaluate(run, log=lambda *_: None)["metrics"]
    row = {"seed": seed, "cpu_s": round(cpu_s, 1), "wall_s": round(wall_s, 1)}
    for d in DIRECTIONS:
        row[d] = {"fid": m[d]["fid"]["value"], "fid_identity": m[d]["fid_identity"]["value"],
                  "l1": m[d]["translation"]["l1"]["mean"], "l1_identity": m[d]["identity"]["l1"]["mean"],
                  "ssim": m[d]["translation"]["ssim"]["mean"], "ssim_identity": m[d]["identity"]["ssim"]["mean"],
                  "cycle": m[d]["cycle"]["l1"]["mean"], "spread": m[d]["spread"]}
    return row


def content_floor(preset: str, overrides: list[str]) -> None:
    import dataclasses

    import torch

    from ganforge.data import load_dataset
    from ganforge.evaluation import fit_to
    from ganforge.metrics import distances as dist
    from ganforge.metrics.features import load_extractor

    data = load_config(preset, overrides).data
    test = load_dataset(dataclasses.replace(data, split="test"), log=lambda *_: None)
    train = load_dataset(dataclasses.replace(data, split="train"), log=lambda *_: None)
    fx = load_extractor("emoji-convnet", log=lambda *_: None)
    features = lambda u8: fx.run(fit_to(u8.float() / 127.5 - 1, fx))[0]  # noqa: E731
    g = torch.Generator().manual_seed(0)
    for domain, held_out, same_vendor, other_vendor in (("B", test.x, train.x, test.extra["input"]),
                                                         ("A", test.extra["input"], train.extra["input"], test.x)):
        stats = dist.gaussian_stats(features(held_out))
        others = same_vendor[torch.randperm(len(same_vendor), generator=g)[:len(held_out)]]
        print(f"domain {domain}: its own drawings of {len(others)} training emoji "
              f"FID {dist.fid_with_interval(stats, features(others), seed=0)['value']:.1f}; the other vendor's "
              f"drawings of the same {len(held_out)} emoji (identity) "
              f"{dist.fid_with_interval(stats, features(other_vendor), seed=0)['value']:.1f}")
    # How much of the vendor the features carry: a linear probe fitted on the training halves (A's
    # drawings of one half, B's of the other), scored on both vendors' drawings of the held-out emoji.
    from sklearn.linear_model import LogisticRegression

    fit_x = torch.cat([features(train.extra["input"]), features(train.x)]).numpy()
    fit_y = [0] * len(train.extra["input"]) + [1] * len(train.x)
    probe = LogisticRegression(max_iter=3000).fit(fit_x, fit_y)
    test_x = torch.cat([features(test.extra["input"]), features(test.x)]).numpy()
    test_y = [0] * len(test.extra["input"]) + [1] * len(test.x)
    print(f"a linear probe on these features tells the two vendors apart on the held-out emoji "
          f"{100 * probe.score(test_x, test_y):.1f} % of the time (chance 50 %)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cyclegan-emoji-32")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="applied to every variant")
    ap.add_argument("--floor", action="store_true", help="score real drawings of other emoji instead of training")
    add_variant_arguments(ap, VARIANTS, "preset,skip")
    args = ap.parse_args()
    if args.floor:
        content_floor(args.preset, args.set)
        return 0

    def describe(r):
        return "  ".join(f"{d}: FID {r[d]['fid']:6.1f} (identity {r[d]['fid_identity']:6.1f}) L1 {r[d]['l1']:.3f} "
                         f"SSIM {r[d]['ssim']:.3f} cycle {r[d]['cycle']:.3f}" for d in DIRECTIONS) + \
            f"  CPU {r['cpu_s']:.0f} s"

    out = run_variants(ap, args, VARIANTS, lambda overrides, seed: one_run(args.preset, overrides + args.set, seed),
                       describe)
    if args.json:
        print(json.dumps(out))
        return 0
    print()
    print(f"{'variant':<14}" + "".join(f"{d + ' FID (min-max)':>24}{d + ' L1':>10}" for d in DIRECTIONS)
          + f"{'CPU s':>8}")
    for variant, rows in out.items():
        print(f"{variant:<14}" + "".join(f"{spread([r[d]['fid'] for r in rows]):>24}"
                                         f"{statistics.mean(r[d]['l1'] for r in rows):>10.3f}" for d in DIRECTIONS)
              + f"{statistics.mean(r['cpu_s'] for r in rows):>8.0f}")
    identity = next(iter(out.values()))[0]
    print("identity (no translation): " + "  ".join(f"{d} FID {identity[d]['fid_identity']:.1f} L1 "
                                                    f"{identity[d]['l1_identity']:.3f}" for d in DIRECTIONS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
