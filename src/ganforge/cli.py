"""The ganforge command line.

    ganforge train PRESET_OR_YAML [--set key=value ...] [--out DIR]
    ganforge train --resume RUN_DIR [--set train.steps=N]
    ganforge sample RUN_DIR -n 64 --seed 0 -o grid.png
    ganforge evaluate RUN_DIR [--json]
    ganforge data fetch mnist|fashion-mnist|digits
    ganforge presets

User mistakes print one line, ``ganforge: error: ...``, and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ganforge.errors import GanforgeError


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_train(args) -> int:
    from ganforge import api
    from ganforge.config import describe_config, load_config

    if args.help_config:
        print(describe_config())
        return 0
    overrides = list(args.set or [])
    if args.device:
        overrides.append(f"train.device={args.device}")
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


def cmd_sample(args) -> int:
    from ganforge import api

    run = api.load_run(args.run_dir, device=args.device)
    samples = run.sample(args.n, seed=args.seed)
    out = Path(args.output)
    if run.info["is_image"]:
        from ganforge.report.images import save_grid

        save_grid(samples, out, nrow=args.nrow)
    else:
        from ganforge.data import load_dataset
        from ganforge.report.plots import plot_2d

        real = load_dataset(run.config.data, log=lambda *_: None).x[: len(samples)]
        plot_2d(real, samples, run.models["D"], out, title=f"{run.config.name}, step {run.step}")
    result = {"path": str(out), "n": args.n, "seed": args.seed, "step": run.step,
              "checkpoint": run.checkpoint.name}
    print(json.dumps(result) if args.json else f"wrote {args.n} samples (seed {args.seed}, step {run.step}) to {out}")
    return 0


def cmd_evaluate(args) -> int:
    from ganforge import api

    result = api.evaluate(args.run_dir, n=args.n, seed=args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"run {result['run']} at step {result['step']} ({result['kimg']:.1f} kimg)")
    for k, v in result.get("training", {}).items():
        print(f"  {k:<14} {v:.4f}")
    if "modes" in result:
        m = result["modes"]
        print(f"  modes captured {m['modes']}/{m['modes_total']}")
        print(f"  high quality   {100 * m['high_quality']:.1f}%  ({m['n']} samples, seed {m['seed']})")
        print(f"  reverse KL     {m['reverse_kl']:.4f}")
    else:
        print("  image metrics (FID, KID, precision/recall) are not available for image runs yet")
    return 0


def cmd_data(args) -> int:
    from ganforge.data import fetch
    from ganforge.data.cache import cache_dir

    fetch(args.name, force=args.force, log=_err)
    info = {"dataset": args.name, "cache": str(cache_dir())}
    print(json.dumps(info) if args.json else f"{args.name} is cached in {cache_dir()}")
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


def build_parser() -> argparse.ArgumentParser:
    from ganforge import __version__

    p = argparse.ArgumentParser(prog="ganforge", description="Train, evaluate and understand generative "
                                "image models.")
    p.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a preset or YAML config, or resume a run")
    t.add_argument("config", nargs="?", help="preset name (see `ganforge presets`) or YAML file")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value "
                   "(repeatable), e.g. --set train.steps=2000")
    t.add_argument("--out", help="run directory (default: runs/NNNNN-<name>)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], help="shorthand for --set train.device=")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    t.add_argument("--help-config", action="store_true", help="list every config key and exit")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a run's latest checkpoint")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-o", "--output", default="samples.png", help="PNG to write")
    s.add_argument("--nrow", type=int, default=None, help="images per row")
    s.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("evaluate", help="print a run's metrics")
    e.add_argument("run_dir")
    e.add_argument("-n", type=int, default=None, help="samples to draw (default: train.eval_samples)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    d = sub.add_parser("data", help="fetch and cache datasets")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = dsub.add_parser("fetch", help="fetch a dataset into the cache")
    f.add_argument("name", help="mnist, fashion-mnist or digits")
    f.add_argument("--force", action="store_true", help="fetch again even when cached")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_data)

    pr = sub.add_parser("presets", help="list the shipped presets")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_presets)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GanforgeError as exc:
        _err(f"ganforge: error: {exc}")
        return 1
    except KeyboardInterrupt:
        _err("ganforge: interrupted")
        return 130
    except OSError as exc:  # disk full, permissions, a vanished file: say which, without a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        _err(f"ganforge: error: {exc.strerror or exc}{where}; check free space and permissions")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
