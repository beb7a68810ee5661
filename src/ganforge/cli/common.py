"""What every command shares: where messages go."""

from __future__ import annotations

import sys


def _err(msg: str) -> None:
    """Progress notes and errors go to stderr, so --json output on stdout stays one object."""
    print(msg, file=sys.stderr)
