"""Training throughput of a preset (default dcgan-mnist): img/s, achieved GFLOP/s and peak memory
per setting.

    python bench/throughput.py [--preset dcgan-mnist] [--steps 120] [--device auto]

Each setting runs the real training loop (ganforge.train) for --steps steps in a process of its
own, so its peak memory is its own (the process's peak resident set on CPU, the data set held in
memory included, so it moves little between settings; on CUDA the peak of torch's allocator);
the first --warmup steps are excluded from the timing. FLOPs per step are counted from the models
with torch's FlopCounterMode over one full iteration (every phase, forward and backward), so
GFLOP/s = FLOPs per step x steps per second, and set beside the peak of a large convolution on
the same machine (fp32 and bf16), measured in the same run. An "image" is one training sample (a pair for
pix2pix, one picture of each domain for CycleGAN).
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


def flops_per_step(cfg) -> tuple[float, list[str]]:
    """FLOPs of one training iteration, counted on the models (forward + backward), phase by phase:
    a phase's count times its repeats, divided by its interval (a lazy phase runs every N steps).
    Phases whose double backward (R1, gradient penalty) the FLOP counter cannot follow are listed
    as uncounted, so GFLOP/s is then a lower bound."""
    from ganforge.data import load_dataset

    if cfg.data.source in ("mnist", "fashion-mnist"):
        spec = DataSpec((1, 28, 28), True)
    else:
        spec = load_dataset(cfg.data, log=lambda *_: None).spec
    method = build_method(cfg, spec)
    tensors = {"x": torch.zeros(cfg.train.batch_size, *spec.sample_shape)}
    if spec.condition_shape:
        tensors["input"] = torch.zeros(cfg.train.batch_size, *spec.condition_shape)
    batch = Batch(tensors)
    optimizers = method.optimizers()
    total, uncounted, carry = 0.0, [], {}
    for phase in method.phases():
        owned = optimizers[phase.trains].networks or (phase.trains,)
        for name, module in method.models.items():
            module.requires_grad_(name in owned or name in phase.keeps_graph_of)
        counter = FlopCounterMode(display=False)
        try:
            with counter:
                out = phase.loss(method.models, batch, carry)
                for key in phase.hands_on:  # what later phases read (e.g. the generators' fakes)
                    carry[key] = out.pop(key)
                out["loss"].backward()
        except RuntimeError:
            uncounted.append(phase.name)
            continue
        total += counter.get_total_flops() * phase.repeats / phase.every
    return total, uncounted


def convolution_peak(device: str, dtype: torch.dtype = torch.bfloat16, repeats: int = 5) -> float:
    """GFLOP/s of a large 3x3 convolution (256 -> 256 channels, 28 x 28, batch 64, channels_last),
    forward and backward, the best of ``repeats``: what this machine's convolution kernels reach
    at their best, the yardstick for a training step's GFLOP/s."""
    import time

    dev = select_device(device)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(dev, memory_format=torch.channels_last)
    x = torch.randn(64, 256, 28, 28, device=dev).to(memory_format=torch.channels_last).requires_grad_(True)
    autocast = torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32)

    def once() -> None:
        with autocast:
            y = conv(x)
        y.float().sum().backward()

    counter = FlopCounterMode(display=False)
    with counter:
        once()
    best = float("inf")
    for _ in range(repeats):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        once()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return counter.get_total_flops() / best / 1e9


def measure(preset: str, label: str, steps: int, warmup: int, device: str) -> dict:
    """One setting, trained in this process: its timing, FLOPs and peak memory."""
    import resource

    cfg = load_config(preset, SETTINGS[label] + [
        f"train.steps={steps}", f"train.log_every={warmup}", "train.sample_every=0",
        "train.checkpoint_every=0", f"train.device={device}"])
    with tempfile.TemporaryDirectory() as tmp:
        run = ganforge.train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = rows[1:]  # drop the warm-up interval
    seconds = timed[-1]["time_s"] - rows[0]["time_s"]
    n_steps = timed[-1]["step"] - rows[0]["step"]
    images = (timed[-1]["kimg"] - rows[0]["kimg"]) * 1000
    peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux: KiB
    if torch.cuda.is_available() and str(select_device(device)).startswith("cuda"):
        peak["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    flops, uncounted = flops_per_step(cfg)
    return {"setting": label, "img_per_s": images / seconds, "steps_per_s": n_steps / seconds,
            "gflop_per_step": flops / 1e9, "gflop_per_s": flops * n_steps / seconds / 1e9,
            "uncounted_phases": uncounted, "batch_size": cfg.train.batch_size, **peak}


def main() -> int:
    import subprocess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="dcgan-mnist")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--setting", choices=list(SETTINGS), help="measure only this setting, in this process")
    args = ap.parse_args()

    device = select_device(args.device)
    if args.setting:
        print(json.dumps(measure(args.preset, args.setting, args.steps, args.warmup, args.device)))
        return 0
    results = []
    for label in SETTINGS:  # each in a fresh process: its own peak memory, no state carried over
        done = subprocess.run([sys.executable, __file__, "--preset", args.preset, "--steps", str(args.steps),
                               "--warmup", str(args.warmup), "--device", args.device, "--setting", label],
                              capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    batch_size = results[0]["batch_size"]

    if args.json:
        print(json.dumps({"preset": args.preset, "device": str(device), "threads": torch.get_num_threads(),
                          "batch_size": batch_size, "results": results}))
        return 0
    print(f"preset {args.preset}, batch {batch_size}, device {device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'setting':<24}{'img/s':>10}{'steps/s':>10}{'GFLOP/step':>12}{'GFLOP/s':>10}{'peak MB':>10}")
    for r in results:
        print(f"{r['setting']:<24}{r['img_per_s']:>10.0f}{r['steps_per_s']:>10.2f}"
              f"{r['gflop_per_step']:>12.2f}{r['gflop_per_s']:>10.1f}"
              f"{r.get('peak_cuda_mb', r['peak_rss_mb']):>10.0f}")
    peak = {"fp32": convolution_peak(args.device, torch.float32), "bf16": convolution_peak(args.device)}
    print(f"convolution peak here (3x3, 256 channels, 28 x 28, forward + backward): fp32 {peak['fp32']:.0f}, "
          f"bf16 {peak['bf16']:.0f} GFLOP/s")
    for r in results:
        kind = "fp32" if r["setting"] == "fp32" else "bf16"
        print(f"  {r['setting']:<22} reaches {100 * r['gflop_per_s'] / peak[kind]:.0f}% of the {kind} peak")
    if results[0]["uncounted_phases"]:
        print(f"(phases {', '.join(results[0]['uncounted_phases'])} not counted: GFLOP/s is a lower bound)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
