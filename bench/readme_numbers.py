"""Regenerate every feature-network figure the README quotes, from a clean clone.

    python bench/readme_numbers.py                 # print the table (about 10 minutes on 2 cores)
    python bench/readme_numbers.py --check README.md   # exit 1 if the README's table differs
    python bench/readme_numbers.py --write README.md   # replace the README's table

The table sits in the README between the markers below. Every number in it is measured in the
canonical feature networks shipped with ganforge (so another machine gets the same features),
from runs that train deterministically on a CPU: the preset, its seed and step count are in
the row. `tests/test_readme_numbers.py` re-checks the cheap rows (network accuracies, floors) in
`make test`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import ganforge
from ganforge.config import load_config
from ganforge.evaluation import reference_floor
from ganforge.metrics.features import load_extractor

START, END = "<!-- readme-numbers:start -->", "<!-- readme-numbers:end -->"
HEADER = ["| what | network | FID (95% CI) | precision / recall | other |", "|---|---|---|---|---|"]


def accuracy_row(name: str) -> str:
    fx = load_extractor(name)
    sub = fx.card.get("test_accuracy_subcategory")
    both = f" category, {100 * sub:.2f} % subcategory" if sub is not None else ""
    return (f"| {name} test accuracy | canonical {fx.sha256[:12]} | | | "
            f"{100 * fx.card['test_accuracy']:.2f} %{both} |")


def floor_row(dataset: str) -> str:
    f = reference_floor(dataset, log=lambda *_: None)
    m = f["metrics"]
    return (f"| floor: {dataset} test vs train | canonical {f['extractor']['sha256'][:12]} | "
            f"{_fid(m['fid'])} | {m['pr']['precision']:.3f} / {m['pr']['recall']:.3f} | "
            f"coverage {m['dc']['coverage']:.3f} |")


def run_row(preset: str, label: str, runs: Path | None = None) -> str:
    """Train ``preset`` at its full length (seed 0) and evaluate 10,000 samples (seed 0); the run is
    kept in ``runs`` when given."""
    with tempfile.TemporaryDirectory() as tmp:
        out = (runs or Path(tmp)) / preset
        run = ganforge.train(load_config(preset), out, overwrite=True, progress=False, log=lambda *_: None)
        card = ganforge.evaluate(run, log=lambda *_: None)
    m, fx = card["metrics"], card["extractor"]
    other = f"conditional accuracy {100 * m['conditional_accuracy']['value']:.1f} %" \
        if "conditional_accuracy" in m else f"classes seen {m['classes']['classes_seen']}/10"
    steps = load_config(preset).train.steps
    return (f"| {label}: `{preset}`, {steps} steps, 10,000 samples | canonical {fx['sha256'][:12]} | "
            f"{_fid(m['fid'])} | {m['pr']['precision']:.3f} / {m['pr']['recall']:.3f} | {other} |")


def _fid(f: dict) -> str:
    return f"{f['value']:.2f} ({f['ci_low']:.2f}-{f['ci_high']:.2f})"


def table(cheap_only: bool = False, runs: Path | None = None) -> list[str]:
    rows = [accuracy_row("mnist-lenet"), accuracy_row("fashion-lenet"), accuracy_row("emoji-convnet"),
            floor_row("mnist"), floor_row("fashion-mnist"), floor_row("emoji-all")]
    if not cheap_only:
        rows += [run_row("dcgan-mnist", "the demo", runs), run_row("cgan-mnist", "conditional DCGAN", runs),
                 run_row("dcgan-emoji", "colour: DCGAN on emoji, 64 px", runs)]
    return HEADER + rows


def readme_table(readme: Path) -> list[str]:
    text = readme.read_text()
    match = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    if not match:
        raise SystemExit(f"{readme} has no {START} ... {END} block")
    return match.group(1).splitlines()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--check", metavar="README")
    group.add_argument("--write", metavar="README")
    ap.add_argument("--cheap", action="store_true", help="only the rows that need no training")
    ap.add_argument("--runs", default=None, help="keep the trained runs in this folder (default: a temporary one)")
    args = ap.parse_args()
    rows = table(args.cheap, Path(args.runs) if args.runs else None)
    if args.check:
        quoted = readme_table(Path(args.check))
        missing = [r for r in rows if r not in quoted]
        for r in missing:
            print(f"differs: {r}", file=sys.stderr)
        print("README numbers reproduced" if not missing else f"{len(missing)} README rows differ")
        return 1 if missing else 0
    if args.write:
        path = Path(args.write)
        text = path.read_text()
        block = START + "\n" + "\n".join(rows) + "\n" + END
        new = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
        path.write_text(new)
        print(f"wrote {len(rows) - 2} rows into {path}")
        return 0
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
