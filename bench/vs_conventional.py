"""ganforge's training loop against a hand-written one: the pytorch/examples DCGAN recipe on the same
networks and data, in fp32 and with the preset's precision flags.

    python bench/vs_conventional.py [--preset dcgan-mnist] [--steps 150] [--warmup 25] [--rounds 3] [--threads 1]
                                    [--device cpu|cuda]

Each variant runs in a process of its own on --threads threads; the rounds alternate the
variants so that the machine's noise falls on all alike. Printed: img/s per variant (min /
median / max over rounds) and each variant's ratio to the two conventional loops, round by round.

- conventional fp32: the recipe of pytorch/examples/dcgan (one G forward per iteration, whose
  fakes D sees detached and G's step reuses; BCE on logits; torch.optim.Adam as constructed there)
  on the preset's networks with their weights, written with plain torch.nn layers (G's first layer
  an nn.ConvTranspose2d, where ganforge computes the same layer as one matrix product);
- conventional bf16 + channels_last: the same loop with the preset's flags (bf16 autocast,
  channels_last networks and batches);
- ganforge: `ganforge.train` on the preset (its flags), timed from its own metrics rows (set-up
  excluded), with sample grids and checkpoints off and the health monitor as configured;
- ganforge fp32: the same with train.precision=fp32 and channels_last off;
- ganforge, no health probe: train.health=false;
- ganforge, reuse fakes: method.reuse_fakes=true, the recipe's order (G's step trains through the
  fakes of the D step instead of a fresh batch of noise: one G forward less per iteration);
- with --device cuda only, ganforge compiled and ganforge fp32 compiled: train.compile=true (on a
  CPU compiling costs a minute or two per process and buys nothing here); the compiler's time
  falls in the warm-up steps, which are not timed.

Both loops draw batches from the same uint8 tensor held in memory (on the GPU with --device cuda),
converting each to [-1, 1]. On CUDA the conventional loop's clock starts and stops after a
synchronisation; ganforge's rows are timed where it reads the losses back, which waits for the GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

VARIANTS = ("conventional fp32", "conventional bf16 + channels_last", "ganforge", "ganforge fp32",
            "ganforge, no health probe", "ganforge, reuse fakes")
CUDA_VARIANTS = ("ganforge, compiled", "ganforge fp32, compiled")


def synchronise(device: str) -> None:
    """Wait for queued GPU work, so a clock reading covers it (nothing to wait for on the CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def conventional(preset: str, steps: int, warmup: int, fast: bool, device: str) -> float:
    """img/s of the pytorch/examples DCGAN loop on the preset's networks."""
    from ganforge.config import load_config
    from ganforge.data import load_dataset
    from ganforge.models import build_models
    from ganforge.models.dcgan import LatentProjection

    cfg = load_config(preset)
    data = load_dataset(cfg.data, log=lambda *_: None)
    G, D = build_models(cfg.model, tuple(data.sample_shape), True)
    for i, layer in enumerate(G.net):  # the recipe's plain nn.ConvTranspose2d, not ganforge's LatentProjection
        if isinstance(layer, LatentProjection):
            plain = torch.nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                             bias=layer.bias is not None)
            plain.load_state_dict(layer.state_dict())
            G.net[i] = plain
    fmt = torch.channels_last if fast else torch.contiguous_format
    G, D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
    images = data.x.to(device)
    o = cfg.method
    opt_g = torch.optim.Adam(G.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2))
    b = cfg.train.batch_size
    ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)
    order = torch.randperm(len(images), device=device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=fast)
    start = 0.0
    for step in range(steps):
        if step == warmup:
            synchronise(device)
            start = time.perf_counter()
        idx = order[(step * b) % (len(order) - b):][:b]
        real = (images[idx].float() / 127.5 - 1).contiguous(memory_format=fmt)
        # (1) Update D: maximise log D(x) + log(1 - D(G(z))).
        D.zero_grad()
        with autocast:
            err_real = F.binary_cross_entropy_with_logits(D(real).float(), ones)
        err_real.backward()
        noise = torch.randn(b, G.z_dim, device=device)
        with autocast:
            fake = G(noise)
            err_fake = F.binary_cross_entropy_with_logits(D(fake.detach()).float(), zeros)
        err_fake.backward()
        opt_d.step()
        # (2) Update G: maximise log D(G(z)).
        G.zero_grad()
        with autocast:
            err_g = F.binary_cross_entropy_with_logits(D(fake).float(), ones)
        err_g.backward()
        opt_g.step()
    float(err_g.detach())  # the last step is finished
    synchronise(device)
    return (steps - warmup) * b / (time.perf_counter() - start)


def ganforge_loop(preset: str, steps: int, warmup: int, overrides: list[str], device: str) -> float:
    """img/s of `ganforge.train` on the preset, from its metrics rows (the warm-up interval dropped)."""
    import ganforge
    from ganforge.config import load_config

    cfg = load_config(preset, [f"train.steps={steps}", f"train.log_every={warmup}", "train.sample_every=0",
                               "train.checkpoint_every=0", "train.checkpoint_minutes=0", f"train.device={device}",
                               *overrides])
    with tempfile.TemporaryDirectory() as tmp:
        run = ganforge.train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "time_s" in r]
    first, last = rows[0], rows[-1]
    return (last["kimg"] - first["kimg"]) * 1000 / (last["time_s"] - first["time_s"])


def measure(variant: str, preset: str, steps: int, warmup: int, device: str) -> float:
    if variant.startswith("conventional"):
        return conventional(preset, steps, warmup, fast="bf16" in variant, device=device)
    overrides = {"ganforge": [], "ganforge fp32": ["train.precision=fp32", "train.channels_last=false"],
                 "ganforge, no health probe": ["train.health=false"],
                 "ganforge, reuse fakes": ["method.reuse_fakes=true"],
                 "ganforge, compiled": ["train.compile=true"],
                 "ganforge fp32, compiled": ["train.precision=fp32", "train.channels_last=false",
                                             "train.compile=true"]}[variant]
    return ganforge_loop(preset, steps, warmup, overrides, device)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="dcgan-mnist")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--warmup", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--variant", choices=VARIANTS + CUDA_VARIANTS, help="measure only this variant, in this process")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.variant:
        print(json.dumps({"img_per_s": measure(args.variant, args.preset, args.steps, args.warmup,
                                                           args.device)}))
        return 0
    variants = VARIANTS + (CUDA_VARIANTS if args.device == "cuda" else ())
    results: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for variant in variants if r % 2 == 0 else variants[::-1]:
            done = subprocess.run([sys.executable, __file__, "--preset", args.preset, "--steps", str(args.steps),
                                   "--warmup", str(args.warmup), "--threads", str(args.threads),
                                   "--device", args.device, "--variant", variant],
                                  capture_output=True, text=True, check=True)
            results[variant].append(json.loads(done.stdout.strip().splitlines()[-1])["img_per_s"])
            print(f"round {r + 1}: {variant}: {results[variant][-1]:.0f} img/s", flush=True)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{args.threads} thread(s)"
    print(f"\n{args.preset}, {args.steps - args.warmup} timed steps, {where}, torch {torch.__version__}")
    print(f"{'variant':<36}{'min':>8}{'median':>8}{'max':>8}{'/ conv fp32':>13}{'/ conv flags':>14}")
    base32, base_flags = results[VARIANTS[0]], results[VARIANTS[1]]
    for variant, values in results.items():
        ratio32 = [v / b for v, b in zip(values, base32, strict=True)]
        ratio_flags = [v / b for v, b in zip(values, base_flags, strict=True)]
        print(f"{variant:<36}{min(values):>8.0f}{statistics.median(values):>8.0f}{max(values):>8.0f}"
              f"{statistics.median(ratio32):>12.2f}x{statistics.median(ratio_flags):>13.2f}x")
    print("(ratios: median over rounds of the ratio within each round)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
