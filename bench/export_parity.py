"""The parity table of `ganforge export`: trained runs exported to ONNX, checked in onnxruntime.

    python bench/export_parity.py RUN_DIR [RUN_DIR ...] [--format onnx|safetensors]

Exports each run into a temporary folder (the export checks itself: random inputs at batch 1 and
7, and at a second picture side where height and width vary) and prints one Markdown row per
exported network: the largest |ONNX - PyTorch| of each check, the tolerance, the file's size and
the export's time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ganforge
from ganforge.export import export_run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--format", default="onnx", choices=["onnx", "safetensors"])
    args = ap.parse_args()
    print("| run | method | network | batch 1 | batch 7 | other side | tolerance | MB | export s |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, run_dir in enumerate(args.runs):
            run = ganforge.load_run(run_dir)
            start = time.perf_counter()
            config = export_run(run, args.format, Path(tmp) / str(i), log=lambda *_: None)
            seconds = time.perf_counter() - start
            for name, graph in config["graphs"].items():
                p = graph["parity"]
                side = next((f"{v['difference']:.1e} ({k[5:]} px)" for k, v in p.items() if k.startswith("side")), "")
                size = (Path(tmp) / str(i) / graph["file"]).stat().st_size / 2**20
                print(f"| {Path(run_dir).name} | {config['method']} | {name} | {p['batch 1']['difference']:.1e} | "
                      f"{p['batch 7']['difference']:.1e} | {side} | {max(v['tolerance'] for v in p.values()):.0e} | "
                      f"{size:.1f} | {seconds:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
