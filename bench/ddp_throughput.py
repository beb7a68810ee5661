"""Training throughput with 1 and with N processes on this machine (`ganforge train --nproc N`).

    python bench/ddp_throughput.py [PRESET] [--steps 300] [--nproc 2] [--repeats 2]

Runs the preset for --steps steps, alternating 1 process and N processes so that the machine's
noise falls on both alike, in two ways:

- strong scaling: the same global batch (1 x B against N x B/N), the same training;
- weak scaling: N x B (each process keeps the preset's batch; the global batch grows N-fold).

Prints the median img/s of each (from the run's summary: training time only, sample grids and
the health probe excluded by train.sample_every=0 and train.health=false) and the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(preset: str, steps: int, nproc: int, batch: int, out: Path) -> float:
    cmd = [sys.executable, "-m", "ganforge", "train", preset, "--out", str(out), "--overwrite", "--quiet", "--json",
           "--set", f"train.steps={steps}", "--set", f"train.batch_size={batch}", "--set", "train.sample_every=0",
           "--set", "train.health=false", "--set", f"train.log_every={steps}", "--set", "train.checkpoint_every=0",
           "--nproc", str(nproc)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["img_per_s"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", nargs="?", default="dcgan-mnist")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from ganforge.config import load_config

    batch = load_config(args.preset).train.batch_size
    cases = {"1 x B": (1, batch), f"{args.nproc} x B/{args.nproc}": (args.nproc, batch // args.nproc),
             f"{args.nproc} x B": (args.nproc, batch)}
    results: dict[str, list[float]] = {k: [] for k in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for name, (nproc, b) in cases.items():
                results[name].append(run(args.preset, args.steps, nproc, b, Path(tmp) / "run"))
    median = {k: statistics.median(v) for k, v in results.items()}
    print(f"{args.preset}, {args.steps} steps, B = {batch}, medians of {args.repeats} alternating runs")
    for name, ips in median.items():
        ratio = ips / median["1 x B"]
        print(f"  {name:<10} {ips:9,.0f} img/s   x{ratio:.2f}   ({', '.join(f'{v:,.0f}' for v in results[name])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
