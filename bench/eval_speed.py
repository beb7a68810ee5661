"""End-to-end evaluation time: draw N samples from a run, extract features, compute the metrics.

    python bench/eval_speed.py RUN_DIR [-n 10000] [--metrics fid,kid,pr,dc,score,classes]

Times each stage separately (generation, feature extraction, each metric) after the feature
network and reference features are cached, and prints a table.
"""

from __future__ import annotations

import argparse
import time

import torch

import ganforge
from ganforge.evaluation import IMAGE_METRICS, image_metrics, reference_features
from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--metrics", default=",".join(IMAGE_METRICS))
    args = ap.parse_args()

    run = ganforge.load_run(args.run_dir)
    fx = load_extractor(DEFAULT_FOR_DATASET[run.config.data.source])
    real_f, real_p = reference_features(fx, fx.spec.dataset, "test")  # cached: not part of the timing
    rows = []
    t_all = time.perf_counter()
    t = time.perf_counter()
    images = run.sample(args.n, seed=0)
    rows.append(("generate", time.perf_counter() - t))
    t = time.perf_counter()
    fake_f, fake_p = fx.run(images)
    rows.append(("features", time.perf_counter() - t))
    for name in args.metrics.split(","):
        t = time.perf_counter()
        image_metrics(real_f, real_p, fake_f, fake_p, [name])
        rows.append((name, time.perf_counter() - t))
    total = time.perf_counter() - t_all
    print(f"{args.n} samples from {args.run_dir}, {torch.get_num_threads()} threads, features {fx.name}")
    for stage, seconds in rows:
        print(f"  {stage:<10}{seconds:8.2f} s")
    print(f"  {'total':<10}{total:8.2f} s   (generation + features + FID alone: "
          f"{sum(s for n, s in rows if n in ('generate', 'features', 'fid')):.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
