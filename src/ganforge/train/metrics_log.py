"""metrics.jsonl: one JSON row per log step, evaluation or alert, appended as training goes.

Reading is forgiving in one precise way: a line that a killed write tore, or that was damaged,
is skipped, and so is any value of the wrong kind, so that plots, the report and the health
monitor's replay never meet one. On resume the rows past the checkpoint's step are dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

#: the values of metrics.jsonl that are text (alert rows); every other value is a number
TEXT_KEYS = frozenset({"alert", "message", "suggestion"})


def parse_rows(text: str) -> list[dict]:
    """metrics.jsonl's rows. A line that is not a JSON object with a whole, non-negative step and a kimg (the
    torn last line of a killed write, a damaged line) is skipped, and so is any value of the
    wrong kind, so that plots, the report and the health monitor's replay never meet one."""
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict) or isinstance(row.get("step"), bool) or not isinstance(row.get("step"), int) \
                or row["step"] < 0 or not _right_kind("kimg", row.get("kimg")):
            continue
        rows.append({k: v for k, v in row.items() if _right_kind(k, v)})  # null: as if absent
    return rows


def _right_kind(key: str, value) -> bool:
    if key in TEXT_KEYS:
        return isinstance(value, str)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class MetricsLog:
    """Appends JSON rows to metrics.jsonl; on resume drops rows past the checkpoint's step."""

    def __init__(self, path: Path, keep_through_step: int | None):
        self.path = path
        if keep_through_step is not None and path.exists():
            rows = parse_rows(path.read_text(errors="replace"))
            kept = [json.dumps(r) for r in rows if r["step"] <= keep_through_step]
            path.write_text("".join(r + "\n" for r in kept))
        elif keep_through_step is None:
            path.write_text("")

    def write(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
