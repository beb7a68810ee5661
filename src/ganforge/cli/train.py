"""Training: `ganforge train` (a preset, a YAML file, or --resume) and `ganforge presets`."""

from __future__ import annotations

import json
from pathlib import Path

from ganforge.cli.common import _err
from ganforge.errors import GanforgeError


def add_parsers(sub) -> None:
    t = sub.add_parser("train", help="train a preset or YAML config, or resume a run")
    t.add_argument("config", nargs="?", help="preset name (see `ganforge presets`) or YAML file")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value "
                   "(repeatable), e.g. --set train.steps=2000")
    t.add_argument("--data", metavar="FOLDER", help="train on your own pictures: shorthand for --set "
                   "data.source=folder --set data.path=FOLDER (sub-folders become class labels)")
    t.add_argument("--out", help="run directory (default: runs/NNNNN-<name>)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], help="shorthand for --set train.device=")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    t.add_argument("--help-config", action="store_true", help="list every config key and exit")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    t.set_defaults(func=cmd_train)

    pr = sub.add_parser("presets", help="list the shipped presets")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_presets)


def cmd_train(args) -> int:
    from ganforge import api
    from ganforge.config import describe_config, load_config

    if args.help_config:
        print(describe_config())
        return 0
    overrides = list(args.set or [])
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.data:
        overrides[:0] = ["data.source=folder", f"data.path={args.data}"]
    if args.resume:
        if args.config:
            raise GanforgeError("give either a preset/config or --resume RUN_DIR, not both")
        run_dir = api.resume(args.resume, overrides, progress=not args.quiet, log=_err)
    else:
        if not args.config:
            raise GanforgeError("name a preset or YAML file to train (see `ganforge presets`), or "
                                "--resume RUN_DIR")
        cfg = load_config(args.config, overrides)
        if args.dry_run:
            print(cfg.to_json())
            return 0
        run_dir = api.train(cfg, args.out, overwrite=args.overwrite, progress=not args.quiet, log=_err)
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    if args.json:
        print(json.dumps({"run_dir": str(run_dir), **summary}))
    else:
        print((Path(run_dir) / "summary.txt").read_text(), end="")
        print(f"run directory: {run_dir}")
    return 0


def cmd_presets(args) -> int:
    from ganforge.config import list_presets

    presets = list_presets()
    if args.json:
        print(json.dumps(presets))
    else:
        width = max(map(len, presets))
        for name, desc in presets.items():
            print(f"{name:<{width}}  {desc}")
    return 0
