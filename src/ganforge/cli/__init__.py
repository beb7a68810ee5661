"""The ganforge command line.

    ganforge train PRESET_OR_YAML [--set key=value ...] [--out DIR]
    ganforge train --resume RUN_DIR [--set train.steps=N]
    ganforge sample RUN_DIR -n 64 --seed 0 -o grid.png
    ganforge evaluate RUN_DIR [--json]
    ganforge export RUN_DIR --format onnx -o FOLDER; ganforge sample --onnx FOLDER
    ganforge watch RUN_DIR...; ganforge lab
    ganforge data fetch mnist|fashion-mnist|digits
    ganforge presets

User mistakes print one line, ``ganforge: error: ...``, and exit with status 1.
"""

from __future__ import annotations

import argparse
import sys

from ganforge.cli import autoencoders, evaluate, export, sample, styles, tools, train, watch
from ganforge.cli.common import _err
from ganforge.errors import GanforgeError, Interrupted

#: command modules, each adding its parsers beside its handlers (in the order --help lists them)
COMMANDS = (train, sample, styles, evaluate, autoencoders, export, watch, tools)


def build_parser() -> argparse.ArgumentParser:
    from ganforge.version import __version__

    p = argparse.ArgumentParser(prog="ganforge", description="Train, evaluate and understand generative "
                                "image models.")
    p.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parsers(sub)
    return p


def _join_negative_values(argv: list[str]) -> list[str]:
    """'--amount -3:3:7' -> '--amount=-3:3:7' (argparse would read -3:3:7 as an option)."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--amount" and arg.startswith("-"):
            out[-1] = f"--amount={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_negative_values(sys.argv[1:] if argv is None else list(argv)))
    try:
        return args.func(args)
    except Interrupted as exc:  # the user stopped it: not an error, but the status says so (130, 143)
        _err(f"ganforge: {exc}")
        return exc.exit_code
    except GanforgeError as exc:
        from ganforge.train.distributed import world

        rank = world().rank
        if not str(exc).startswith("rank 0 stopped"):  # rank 0 says it once for all
            _err(f"ganforge: error: {exc}" if rank == 0 else f"ganforge: error on rank {rank}: {exc}")
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
