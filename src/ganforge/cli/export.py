"""`ganforge export`: a run's sampling networks as ONNX or safetensors files, checked against PyTorch."""

from __future__ import annotations

import argparse
import json

from ganforge.cli.common import _err, run_command


def add_parsers(sub) -> None:
    ex = run_command(sub, "export", "write a run's sampling networks as ONNX (dynamic batch) or safetensors, with a "
                     "config.json saying how to call them; checks them against PyTorch", cmd_export, output="export",
                     output_is="folder")
    ex.add_argument("--format", choices=["onnx", "safetensors"], default="onnx", help="default onnx")
    ex.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                    help="--ema: the EMA copies (an error when the run keeps none); --no-ema: the trained weights; "
                    "default: the EMA copies when the run keeps them, as `ganforge sample` draws")


def cmd_export(args) -> int:
    from ganforge import api
    from ganforge.export import export_run

    run = api.load_run(args.run_dir, step=args.step)
    config = export_run(run, args.format, args.output, ema=args.ema, log=_err)
    graphs = {name: {"file": g["file"], "role": g["role"], "parity": g["parity"]}
              for name, g in config["graphs"].items()}
    result = {"path": args.output, "format": args.format, "step": run.step, "weights": config["weights"],
              "graphs": graphs}
    print(json.dumps(result) if args.json else
          f"wrote {', '.join(g['file'] for g in graphs.values())} and config.json ({config['weights']} weights) to "
          f"{args.output}")
    return 0
