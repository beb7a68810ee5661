"""Mode coverage of the 2-D toy presets over several seeds, for both generator losses.

    python bench/toy_modes.py [--presets toy-ring,toy-grid] [--losses ns,mm] [--seeds 0,1,2]
                              [--set key=value ...]

Trains each (preset, loss, seed) with the preset's own budget and evaluates 2,500 samples with
the PacGAN protocol (REFERENCES.md): modes captured, high-quality fraction, reverse KL, the
share of samples more than 6 std from every mode (between the modes), and the modes' spread (1:
as wide as the data, 0: each drawn as one point). Prints a row per run and the mean per
(preset, loss), with wall time per seed.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="toy-ring,toy-grid")
    ap.add_argument("--losses", default="ns,mm")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    rows = []
    for preset in args.presets.split(","):
        for loss in args.losses.split(","):
            for seed in map(int, args.seeds.split(",")):
                cfg = load_config(preset, [f"method.loss={loss}", f"train.seed={seed}",
                                           "train.sample_every=0", "train.checkpoint_every=0", *args.set])
                t0 = time.perf_counter()
                with tempfile.TemporaryDirectory() as tmp:
                    run = ganforge.train(cfg, Path(tmp) / "run", progress=False, log=lambda *_: None)
                    ev = json.loads((run / "eval.json").read_text())
                row = {"preset": preset, "loss": loss, "seed": seed, "steps": cfg.train.steps,
                       "seconds": round(time.perf_counter() - t0, 1), "modes": ev["modes"],
                       "modes_total": ev["modes_total"], "high_quality": ev["high_quality"],
                       "reverse_kl": ev["reverse_kl"], "off_modes": ev["off_modes"],
                       "spread": ev["spread"]}
                rows.append(row)
                if not args.json:
                    print(f"{preset:<18}{loss:<6} seed {seed}: {row['modes']:>2}/{row['modes_total']} modes, "
                          f"{100 * row['high_quality']:5.1f}% HQ, rKL {row['reverse_kl']:.3f}, "
                          f"{100 * row['off_modes']:.1f}% off the modes, spread {row['spread']:.2f}, "
                          f"{row['seconds']:.0f}s", flush=True)
    summary = []
    for preset in args.presets.split(","):
        for loss in args.losses.split(","):
            sel = [r for r in rows if r["preset"] == preset and r["loss"] == loss]
            summary.append({"preset": preset, "loss": loss, "seeds": len(sel),
                            "modes": statistics.mean(r["modes"] for r in sel),
                            "modes_total": sel[0]["modes_total"],
                            "high_quality": statistics.mean(r["high_quality"] for r in sel),
                            "reverse_kl": statistics.mean(r["reverse_kl"] for r in sel),
                            "off_modes": statistics.mean(r["off_modes"] for r in sel),
                            "spread": statistics.mean(r["spread"] for r in sel),
                            "seconds": statistics.mean(r["seconds"] for r in sel)})
    if args.json:
        print(json.dumps({"runs": rows, "mean": summary}))
        return 0
    print(f"\n{'preset':<18}{'loss':<6}{'modes':>12}{'HQ %':>8}{'rKL':>8}{'off %':>8}{'spread':>8}{'s/seed':>8}")
    for s in summary:
        print(f"{s['preset']:<18}{s['loss']:<6}{s['modes']:>6.1f} / {s['modes_total']:<3}"
              f"{100 * s['high_quality']:>8.1f}{s['reverse_kl']:>8.3f}{100 * s['off_modes']:>8.1f}"
              f"{s['spread']:>8.2f}{s['seconds']:>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
