"""Ctrl-C and SIGTERM during training: finish the step, save a checkpoint, then stop.

A signal arriving mid-step would leave an optimizer half-stepped, so the handler only records
it; the loop checks after each step, saves a complete checkpoint and raises
errors.Interrupted. A second Ctrl-C stops at once (KeyboardInterrupt), keeping the last
checkpoint on disk.
"""

from __future__ import annotations

import signal
import threading


class StopSignals:
    """Within ``with StopSignals(log) as stop:``, ``stop.signum`` is the first SIGINT/SIGTERM
    received (None until then). Handlers are only installed in the main thread and restored on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, log=print):
        self.log = log
        self.signum: int | None = None
        self.previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        self.signum = signum
        self.log(f"\nganforge: {signal.Signals(signum).name} received: saving a checkpoint after this step "
                 "(Ctrl-C again to stop at once)")

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self.previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum or signal.SIGINT)
