"""What every command shares: where messages go."""

from __future__ import annotations

import sys


def _err(msg: str) -> None:
    """Progress notes and errors go to stderr, so --json output on stdout stays one object."""
    print(msg, file=sys.stderr)


def run_command(sub, name: str, help: str, func, output: str | None = None,  # noqa: A002
                run_optional: bool = False, output_is: str = "file"):
    """A subcommand that reads a run directory: RUN_DIR (optional when ``run_optional``), --step (a
    kept checkpoint instead of the latest), -o/--output when it writes a file (default ``output``), --json."""
    p = sub.add_parser(name, help=help)
    p.add_argument("run_dir", nargs="?" if run_optional else None)
    p.add_argument("--step", type=int, default=None, help="use the checkpoint saved at this step")
    if output is not None:
        p.add_argument("-o", "--output", default=output, help=f"{output_is} to write (default {output})")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=func)
    return p
