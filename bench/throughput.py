"""Training throughput of a preset (default dcgan-mnist): img/s and achieved GFLOP/s per setting.

    python bench/throughput.py [--preset dcgan-mnist] [--steps 120] [--device auto]

Each setting runs the real training loop (ganforge.train) for --steps steps; the first
--warmup steps are excluded from the timing. FLOPs per step are counted from the models with
torch's FlopCounterMode over one full iteration (k discriminator steps + one generator step,
forward and backward), so GFLOP/s = FLOPs per step x steps per second.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import ganforge
from ganforge.config import load_config
from ganforge.data import Batch, DataSpec
from ganforge.methods import build_method
from ganforge.train.loop import select_device

SETTINGS = {
    "fp32": ["train.precision=fp32", "train.channels_last=false"],
    "bf16": ["train.precision=bf16", "train.channels_last=false"],
    "bf16 + channels_last": ["train.precision=bf16", "train.channels_last=true"],
}


def flops_per_step(cfg) -> int:
    """FLOPs of one training iteration, counted on the models (forward + backward)."""
    shape = (1, 28, 28) if cfg.data.source in ("mnist", "fashion-mnist") else None
    if shape is None:
        from ganforge.data import load_dataset

        shape = load_dataset(cfg.data, log=lambda *_: None).sample_shape
    method = build_method(cfg, DataSpec(tuple(shape), True))
    batch = Batch(torch.zeros(cfg.train.batch_size, *shape))
    counter = FlopCounterMode(display=False)
    with counter:
        for phase in method.phases():
            for name, module in method.models.items():
                module.requires_grad_(name == phase.trains)
            for _ in range(phase.repeats):
                phase.loss(method.models, batch, {})["loss"].backward()
    return counter.get_total_flops()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="dcgan-mnist")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    device = select_device(args.device)
    results = []
    for label, overrides in SETTINGS.items():
        cfg = load_config(args.preset, overrides + [
            f"train.steps={args.steps}", f"train.log_every={args.warmup}", "train.sample_every=0",
            "train.checkpoint_every=0", f"train.device={args.device}"])
        with tempfile.TemporaryDirectory() as tmp:
            run = ganforge.train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
            rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        timed = rows[1:]  # drop the warm-up interval
        seconds = timed[-1]["time_s"] - rows[0]["time_s"]
        steps = timed[-1]["step"] - rows[0]["step"]
        images = (timed[-1]["kimg"] - rows[0]["kimg"]) * 1000
        flops = flops_per_step(cfg)
        results.append({"setting": label, "img_per_s": images / seconds, "steps_per_s": steps / seconds,
                        "gflop_per_step": flops / 1e9, "gflop_per_s": flops * steps / seconds / 1e9})

    if args.json:
        print(json.dumps({"preset": args.preset, "device": str(device), "threads": torch.get_num_threads(),
                          "batch_size": cfg.train.batch_size, "results": results}))
        return 0
    print(f"preset {args.preset}, batch {cfg.train.batch_size}, device {device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'setting':<24}{'img/s':>10}{'steps/s':>10}{'GFLOP/step':>12}{'GFLOP/s':>10}")
    for r in results:
        print(f"{r['setting']:<24}{r['img_per_s']:>10.0f}{r['steps_per_s']:>10.2f}"
              f"{r['gflop_per_step']:>12.2f}{r['gflop_per_s']:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
