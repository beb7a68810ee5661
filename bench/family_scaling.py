"""Time and memory per training image of every model family as the resolution doubles
(32 -> 64 -> 128 px at batch 32) and as the batch doubles (16 -> 32 -> 64 at 64 px).

    python bench/family_scaling.py [--families dcgan,vae,...] [--threads 2] [--markdown]

Each measurement runs in a process of its own: the preset's data, networks and optimizers are
built as `ganforge train` builds them (the preset's precision and memory format), then the
shared loop's iterations are timed directly (no logging, grids, probes or checkpoints).

* time: an iteration's mean wall time, lazy phases included at their rate: the steps of one
  period of the lazy phases (StyleGAN's R1 every 16, path length every 4) are grouped by which
  phases fall due, each group is timed over at least --seconds (and 3 iterations) after one
  warm-up, and weighted by how often it occurs; "ms/img" divides by the training images an
  iteration draws (k batches for k critic steps; an image is a pair for pix2pix, one picture of
  each domain for CycleGAN, a high-resolution crop for the super-resolution families).
* memory: the process's peak resident memory during training above what it held once data,
  networks and optimizers were built (before the first step) (Linux: VmHWM reset through clear_refs; this is
  gradients, optimizer moments and activations; "MB/img" divides by the batch size, so it
  includes the per-step fixed part, which shrinks per image as the batch grows).

"resolution" is the size of the generated image (GANs, autoencoders, translation) or of the
high-resolution crop (super-resolution, 4x: the input is a quarter of it); the data is resized
to it (emoji are 64 px originals; only time and memory are measured here, not quality).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

#: family -> (preset, extra overrides; "{res}" is replaced by the resolution)
FAMILIES = {
    "dcgan": ("dcgan-emoji", ["data.source=emoji-twitter", "data.resolution={res}"]),
    "wgan-gp": ("wgan-gp-emoji", ["data.source=emoji-twitter", "data.resolution={res}"]),
    "ae": ("vae-emoji", ["method.name=ae", "data.source=emoji-twitter", "data.resolution={res}"]),
    "vae": ("vae-emoji", ["data.source=emoji-twitter", "data.resolution={res}"]),
    "vq-vae": ("vqvae-emoji", ["data.source=emoji-twitter", "data.resolution={res}"]),
    "pix2pix": ("pix2pix-google2twitter", ["data.resolution={res}"]),
    "cyclegan": ("cyclegan-emoji", ["data.resolution={res}"]),
    "srresnet": ("srresnet-icons-x4", ["method.crop={res}"]),
    "srgan": ("srgan-icons-x4", ["method.crop={res}", "method.init_run="]),
    "stylegan": ("stylegan-emoji", ["data.source=emoji-twitter", "data.resolution={res}"]),
}
SETTINGS = [(32, 32), (64, 32), (128, 32), (64, 16), (64, 64)]  # (resolution, batch)


def vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(family: str, resolution: int, batch: int, seconds: float) -> dict:
    """One (family, resolution, batch) in this process."""
    import torch

    from ganforge.config import load_config
    from ganforge.data import load_dataset
    from ganforge.methods import build_method
    from ganforge.train.loop import LoopHooks, TrainingLoop, seed_everything, select_device

    preset, extra = FAMILIES[family]
    cfg = load_config(preset, [o.replace("{res}", str(resolution)) for o in extra] + [
        f"train.batch_size={batch}", "train.device=cpu", "train.health=false"])
    device = select_device("cpu")
    seed_everything(0)
    dataset = load_dataset(cfg.data, log=lambda *_: None)
    method = build_method(cfg, dataset.spec, device, cfg.train.channels_last)
    loop = TrainingLoop(None, cfg, method, dataset, device, LoopHooks(), lambda *_: None)
    loop.prepare(None, progress=False)

    # The steps of one period of the lazy phases, grouped by which phases fall due.
    period = math.lcm(*(p.every for p in loop.phases))
    groups: dict[tuple[str, ...], list[int]] = {}
    for step in range(period):
        groups.setdefault(tuple(p.name for p in loop.phases if step % p.every == 0), []).append(step)

    def iterate(step: int) -> None:
        loop.step = step
        loop.iteration(is_log_step=False)

    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    base_kib = vm_kib("VmRSS")
    iterate(0)  # warm-up: every phase once, gradients and optimizer moments allocated
    images_before = loop.images_seen
    iterate(1 % period)
    images_per_iteration = loop.images_seen - images_before
    ms_per_iteration = 0.0
    for steps in groups.values():
        iterate(steps[0])  # warm-up of this group
        n, start = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - start < seconds:
            iterate(steps[0])
            n += 1
        ms_per_iteration += 1000 * (time.perf_counter() - start) / n * len(steps) / period
    peak_mb = (vm_kib("VmHWM") - base_kib) / 1024
    return {"family": family, "preset": preset, "resolution": resolution, "batch": batch,
            "threads": torch.get_num_threads(), "precision": cfg.train.precision,
            "ms_per_iteration": ms_per_iteration, "images_per_iteration": images_per_iteration,
            "ms_per_image": ms_per_iteration / images_per_iteration, "peak_mb": peak_mb,
            "mb_per_image": peak_mb / batch, "lazy_groups": len(groups)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated, of: " + ", ".join(FAMILIES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0, help="least time each group of iterations is timed")
    ap.add_argument("--settings", default=",".join(f"{r}:{b}" for r, b in SETTINGS),
                    help="comma-separated resolution:batch pairs to measure (default: all five)")
    ap.add_argument("--markdown", action="store_true", help="print the README table")
    ap.add_argument("--merge", help="a file of earlier result lines (JSON) to print the table with")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # family:resolution:batch, measured in this process
    args = ap.parse_args()

    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        family, resolution, batch = args.one.split(":")
        print(json.dumps(measure(family, int(resolution), int(batch), args.seconds)))
        return 0
    results = []
    for family in args.families.split(","):
        if family not in FAMILIES:
            ap.error(f"unknown family {family}; choose from {', '.join(FAMILIES)}")
        for resolution, batch in (map(int, pair.split(":")) for pair in args.settings.split(",")):
            done = subprocess.run([sys.executable, __file__, "--one", f"{family}:{resolution}:{batch}",
                                   "--threads", str(args.threads), "--seconds", str(args.seconds)],
                                  capture_output=True, text=True)
            if done.returncode:
                print(f"{family} {resolution} px batch {batch}: failed: {done.stderr.strip().splitlines()[-1]}",
                      file=sys.stderr)
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(r)
            print("JSON " + json.dumps(r), file=sys.stderr, flush=True)
            print(f"{family:<10}{resolution:>5} px  batch {batch:>3}  {r['ms_per_iteration']:>9.1f} ms/iter  "
                  f"{r['ms_per_image']:>7.2f} ms/img  {r['peak_mb']:>7.0f} MB  {r['mb_per_image']:>6.2f} MB/img",
                  flush=True)
    if args.markdown:
        earlier = [json.loads(line[5:]) for line in Path(args.merge).read_text().splitlines()
                   if line.startswith("JSON ")] if args.merge else []
        print_table(earlier + results)
    return 0


def print_table(results: list[dict]) -> None:
    """One row per family: ms and MB per image at each setting."""
    by = {(r["family"], r["resolution"], r["batch"]): r for r in results}
    head = [f"{res} px, b{b}" for res, b in SETTINGS]
    print("| family (preset) | " + " | ".join(head) + " |")
    print("|---" * (len(SETTINGS) + 1) + "|")
    for family, (preset, _) in FAMILIES.items():
        cells = []
        for res, b in SETTINGS:
            r = by.get((family, res, b))
            cells.append(f"{r['ms_per_image']:.2f} ms, {r['mb_per_image']:.1f} MB" if r else "-")
        if any(c != "-" for c in cells):
            print(f"| {family} (`{preset}`) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
