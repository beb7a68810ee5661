"""Training: `ganforge train` (a preset, a YAML file, or --resume) and `ganforge presets`."""

from __future__ import annotations

import json
import sys
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
    t.add_argument("--watch", nargs="?", const=8765, type=int, default=None, metavar="PORT",
                   help="follow the run in the browser while it trains (`ganforge watch` on 127.0.0.1, port 8765)")
    t.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="train with N processes on this machine (data parallel; torchrun started for you): "
                   "train.batch_size is per process, so the global batch is N x it")
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
    if args.nproc is not None:
        from ganforge.train.distributed import launched_by_torchrun

        if args.nproc < 1:
            raise GanforgeError(f"--nproc must be at least 1, got {args.nproc}")
        if args.nproc > 1 and not launched_by_torchrun():
            return _start_torchrun(args)
    overrides = list(args.set or [])
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.data:
        overrides[:0] = ["data.source=folder", f"data.path={args.data}"]
    if args.resume:
        if args.config:
            raise GanforgeError("give either a preset/config or --resume RUN_DIR, not both")
        if args.watch is not None:
            _watch(args.resume, args.watch)
        run_dir = api.resume(args.resume, overrides, progress=not args.quiet, log=_err)
    else:
        if not args.config:
            raise GanforgeError("name a preset or YAML file to train (see `ganforge presets`), or "
                                "--resume RUN_DIR")
        cfg = load_config(args.config, overrides)
        if args.dry_run:
            print(cfg.to_json())
            return 0
        if args.watch is not None:
            args.out = args.out or str(api.next_run_dir("runs", cfg.name))
            _watch(args.out, args.watch)
        run_dir = api.train(cfg, args.out, overwrite=args.overwrite, progress=not args.quiet, log=_err)
    from ganforge.train import distributed

    if not distributed.world().is_main:  # rank 0 prints the summary
        distributed.stop()
        return 0
    distributed.stop()
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


def torchrun_command(args) -> list[str]:
    """The torchrun command that runs this `ganforge train` in ``args.nproc`` processes on this machine."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
           "-m", "ganforge", "train"]
    cmd += [args.config] if args.config else []
    for text in args.set or []:
        cmd += ["--set", text]
    for flag in ("data", "out", "resume", "device", "watch"):
        if getattr(args, flag) is not None:
            cmd += [f"--{flag}", str(getattr(args, flag))]
    cmd += [f"--{flag.replace('_', '-')}" for flag in ("overwrite", "dry_run", "quiet", "json") if getattr(args, flag)]
    return cmd


def _start_torchrun(args) -> int:
    """Run ``ganforge train`` under torchrun (one machine, a free port); its exit status is ours."""
    import os
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // args.nproc))}
    return subprocess.run(torchrun_command(args), env=env).returncode


def _watch(run_dir: str, port: int) -> None:
    """`ganforge watch` for the run about to train, in this process (it ends with the training)."""
    import os

    from ganforge.watch import start_in_background

    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 serves the page
        _, url = start_in_background([run_dir], port=port)
        _err(f"watch the run at {url} (the page serves while this process trains; `ganforge watch {run_dir}` "
             "shows it again later)")

