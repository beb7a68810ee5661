"""What the variants-over-seeds benchmarks share (demo_quality, stacked_modes, vae_likelihood):
the --variants/--seeds/--json arguments, the loop that trains each (variant, seed) and prints its
row, and "mean (min-max)" cells for the summary."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable


def add_variant_arguments(ap: argparse.ArgumentParser, variants: dict, default: str) -> None:
    ap.add_argument("--variants", default=default, help="comma-separated, of: " + ", ".join(variants))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json", action="store_true")


def run_variants(ap: argparse.ArgumentParser, args, variants: dict, run: Callable[[list[str], int], dict],
                 describe: Callable[[dict], str]) -> dict[str, list[dict]]:
    """variant -> one row per seed, from ``run(overrides, seed)``; each row printed as it comes
    (``describe(row)`` after the variant and seed) unless --json."""
    out = {}
    for variant in args.variants.split(","):
        if variant not in variants:
            ap.error(f"unknown variant {variant!r}; choose from {', '.join(variants)}")
        rows = []
        for seed in (int(s) for s in args.seeds.split(",")):
            rows.append(run(variants[variant], seed))
            if not args.json:
                print(f"{variant:<16} seed {seed}  {describe(rows[-1])}", flush=True)
        out[variant] = rows
    return out


def spread(values: list[float], fmt: str = ".1f") -> str:
    """'mean (min-max)' of per-seed values."""
    return f"{statistics.mean(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"
