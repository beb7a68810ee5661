"""Cost of the health monitor: the same training run with train.health=true and =false.

    python bench/health_overhead.py [--preset demo-healthy] [--steps 400] [--repeats 3]

Runs alternate (off, on, off, on, ...) in one process, so both see the same machine load. For
each run it reports the training-loop time (time_s in metrics.jsonl: every step, including the
health probe at log steps, excluding set-up), the whole ganforge.train call (data, the probe's
classifier, the final report), and the overhead of the loop as the ratio of medians.
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


def one_run(preset: str, steps: int, health: bool, out: Path) -> tuple[float, float]:
    cfg = load_config(preset, [f"train.steps={steps}", "train.sample_every=0", "train.checkpoint_every=0",
                               f"train.health={str(health).lower()}"])
    t0 = time.perf_counter()
    run = ganforge.train(cfg, out, overwrite=True, progress=False, log=lambda *_: None)
    total = time.perf_counter() - t0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return max(r["time_s"] for r in rows if "time_s" in r), total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo-healthy")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    loop = {False: [], True: []}
    whole = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for health in (False, True):
                t_loop, t_total = one_run(args.preset, args.steps, health, Path(tmp) / f"run{i}{health}")
                loop[health].append(t_loop)
                whole[health].append(t_total)
                print(f"repeat {i}  health={'on ' if health else 'off'}  loop {t_loop:6.2f} s  whole call "
                      f"{t_total:6.2f} s", flush=True)
    cfg = load_config(args.preset)
    m_off, m_on = statistics.median(loop[False]), statistics.median(loop[True])
    w_off, w_on = statistics.median(whole[False]), statistics.median(whole[True])
    print(f"\n{args.preset}, {args.steps} steps, log_every {cfg.train.log_every} (a probe every "
          f"{cfg.train.log_every} steps), batch {cfg.train.batch_size}, {args.repeats} repeats")
    print(f"training loop: off {m_off:.2f} s, on {m_on:.2f} s -> overhead {100 * (m_on / m_off - 1):+.1f}%")
    print(f"whole call:    off {w_off:.2f} s, on {w_on:.2f} s -> overhead {100 * (w_on / w_off - 1):+.1f}%")


if __name__ == "__main__":
    main()
