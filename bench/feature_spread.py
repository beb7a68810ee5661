"""How much a FID moves when only the feature network changes: retrain it with several seeds.

    python bench/feature_spread.py [--network mnist-lenet] [--seeds 1,2,3,4,5] [--out bench-out/spread]

For the network's dataset, two fixed sample sets of 10,000 images are made once (seeded,
deterministic on one machine): a weak model (the dcgan preset after --weak-steps) and a strong
one (the preset's full length). Each seed's network is trained by the canonical recipe
(`ganforge evaluator train`, one thread: two seeds can run side by side on two cores as two
processes) into OUT/<network>/seed_<s>; then the FID of both sample sets against the test split
is computed in the canonical network's features and in each retrained network's. The spread
across seeds is the part of a FID difference that says nothing about the generator.
Everything is cached in OUT, so a second call only prints.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

import ganforge
from ganforge.config import load_config
from ganforge.evaluation import image_metrics, reference_features
from ganforge.metrics.features import load_extractor, load_retrained, spec_for, train_extractor

PRESET = {"mnist-lenet": "dcgan-mnist", "fashion-lenet": "dcgan-fashion"}


def sample_set(network: str, which: str, steps: int, out: Path) -> torch.Tensor:
    """10,000 samples (seed 0) of the network's dcgan preset trained for ``steps`` steps."""
    path = out / f"samples-{which}.safetensors"
    if not path.exists():
        from safetensors.torch import save_file

        cfg = load_config(PRESET[network], [f"train.steps={steps}", "train.sample_every=0", "train.checkpoint_every=0",
                                            "train.health=false"])
        run = ganforge.train(cfg, out / f"run-{which}", overwrite=True, progress=False, log=lambda *_: None)
        save_file({"x": ganforge.load_run(run).sample(10000, seed=0).contiguous()}, str(path))
    from safetensors.torch import load_file

    return load_file(str(path))["x"]


def fids(fx, samples: dict[str, torch.Tensor]) -> dict[str, float]:
    real = reference_features(fx, fx.spec.dataset, "test", log=lambda *_: None)
    out = {}
    for which, x in samples.items():
        f, p = fx.run(x)
        out[which] = image_metrics(*real, f, p, ["fid"])["fid"]["value"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="mnist-lenet", choices=list(PRESET))
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--weak-steps", type=int, default=400)
    ap.add_argument("--strong-steps", type=int, default=0, help="default: the preset's train.steps")
    ap.add_argument("--out", default="bench-out/spread")
    ap.add_argument("--train-only", action="store_true", help="only train the seeds' networks (for a 2nd process)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = Path(args.out) / args.network
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    quiet = (lambda *_: None) if args.json else (lambda *a: print(*a, file=sys.stderr))

    for seed in seeds:  # the slow part: each seed's network, by the canonical recipe
        folder = out / f"seed_{seed}"
        if not (folder / f"{args.network}.json").exists():
            train_extractor(args.network, seed=seed, out_dir=folder, progress=False, log=quiet)
    if args.train_only:
        return 0
    strong = args.strong_steps or load_config(PRESET[args.network]).train.steps
    samples = {"weak": sample_set(args.network, "weak", args.weak_steps, out),
               "strong": sample_set(args.network, "strong", strong, out)}
    canonical = load_extractor(args.network)
    rows = [{"network": "canonical", "seed": 0, "sha256": canonical.sha256[:12],
             "accuracy": canonical.card["test_accuracy"], **fids(canonical, samples)}]
    for seed in seeds:
        fx = load_retrained(args.network, out / f"seed_{seed}")
        rows.append({"network": "retrained", "seed": seed, "sha256": fx.sha256[:12],
                     "accuracy": fx.card["test_accuracy"], **fids(fx, samples)})
    summary = {}
    for which in samples:
        values = [r[which] for r in rows[1:]]
        summary[which] = {"canonical": rows[0][which], "mean": statistics.mean(values),
                          "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                          "min": min(values), "max": max(values)}
    result = {"network": args.network, "dataset": spec_for(args.network).dataset, "weak_steps": args.weak_steps,
              "strong_steps": strong, "rows": rows, "summary": summary}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.network}: FID of fixed 10,000-sample sets vs the {result['dataset']} test split")
    print(f"{'network':<12}{'seed':>5}{'sha256':>14}{'accuracy':>10}{'weak':>10}{'strong':>10}")
    for r in rows:
        print(f"{r['network']:<12}{r['seed']:>5}{r['sha256']:>14}{100 * r['accuracy']:>9.2f}%"
              f"{r['weak']:>10.1f}{r['strong']:>10.1f}")
    for which, s in summary.items():
        print(f"{which}: canonical {s['canonical']:.1f}; seeds {s['mean']:.1f} +- {s['std']:.1f} "
              f"(min {s['min']:.1f}, max {s['max']:.1f}; spread {100 * (s['max'] - s['min']) / s['mean']:.0f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
