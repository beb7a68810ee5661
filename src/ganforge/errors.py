"""User-facing errors.

Every mistake a user can make (a bad config key, an empty folder, a checkpoint from the future)
raises :class:`GanforgeError` with one sentence that names the problem and the fix. The CLI
prints it on one line without a traceback; the Python API lets it propagate.
"""

from __future__ import annotations

import difflib


class GanforgeError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def did_you_mean(name: str, choices) -> str:
    """Return " (did you mean 'x'?)" for the closest of ``choices``, or "" when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Interrupted(GanforgeError):
    """Training stopped by Ctrl-C or SIGTERM (after saving a checkpoint when it could).
    ``exit_code`` is the shell's convention, 128 + the signal number (130, 143)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code
