"""`ganforge watch RUN...`: a local web page that follows runs while they train (and finished ones).

The server reads only the run directories it was given and serves only what the page needs:

    GET /                              the page (web/watch.html, no external scripts or fonts)
    GET /api/runs                      each run's name, method, planned steps and the charts to draw
    GET /api/runs/<i>/rows?since=<n>   metrics.jsonl rows from row n on, the sample grids, the summary
    GET /api/runs/<i>/samples/<name>   one sample grid (names like step_000001000.png only)

Anything else is a 404: a file is served only when its name matches the sample-grid pattern and
it lies in a given run's samples/ folder, so no path reaches outside the runs. The page polls
once a second and redraws when rows arrive; it binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from ganforge.errors import GanforgeError
from ganforge.report.html import CHARTS
from ganforge.train.metrics_log import parse_rows
from ganforge.web.server import PageHandler, listen, page, url_of

SAMPLE_NAME = re.compile(r"step_\d{9}\.png")
MAX_ROWS_PER_REPLY = 5000


class WatchedRun:
    """One run directory as the page sees it; metrics.jsonl is parsed again only when it changed."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._stamp: tuple[int, int] | None = None
        self._rows: list[dict] = []
        self._lock = threading.Lock()

    def config(self) -> dict:
        try:
            return json.loads((self.run_dir / "config.json").read_text())
        except (OSError, ValueError):
            return {}  # not started yet, or being written

    def describe(self, index: int) -> dict:
        cfg = self.config()
        return {"id": index, "name": self.run_dir.name, "path": str(self.run_dir),
                "method": cfg.get("method", {}).get("name"), "data": cfg.get("data", {}).get("source"),
                "steps": cfg.get("train", {}).get("steps")}

    def rows(self) -> list[dict]:
        path = self.run_dir / "metrics.jsonl"
        try:
            stat = path.stat()
        except OSError:
            return []
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if stamp != self._stamp:
                self._rows, self._stamp = parse_rows(path.read_text(errors="replace")), stamp
            return self._rows

    def samples(self) -> list[str]:
        folder = self.run_dir / "samples"
        return sorted(p.name for p in folder.glob("step_*.png") if SAMPLE_NAME.fullmatch(p.name)) \
            if folder.is_dir() else []

    def update(self, since: int) -> dict:
        rows = self.rows()
        since = max(0, min(since, len(rows)))
        summary = None
        try:
            summary = json.loads((self.run_dir / "summary.json").read_text())
        except (OSError, ValueError):
            pass
        return {"rows": rows[since:since + MAX_ROWS_PER_REPLY], "from": since, "total": len(rows),
                "samples": self.samples(), "finished": summary is not None,
                "steps": self.config().get("train", {}).get("steps")}

    def sample_file(self, name: str) -> Path | None:
        if not SAMPLE_NAME.fullmatch(name):
            return None
        path = self.run_dir / "samples" / name
        return path if path.is_file() else None


def chart_specs() -> list[dict]:
    """The report's charts (report/html.py), so the live page and report.html draw the same things."""
    return [{"id": cid, "title": title, "ylabel": ylabel, "series": [{"key": k, "label": lab} for k, lab in series],
             "log": log, "ylim": list(ylim) if ylim else None} for cid, title, ylabel, series, log, ylim in CHARTS]


def _handler(runs: list[WatchedRun], page_bytes: bytes):
    class Handler(PageHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            url = urlparse(self.path)
            parts = url.path.split("/")
            if url.path in ("/", "/index.html"):
                return self.send(page_bytes, "text/html; charset=utf-8")
            if url.path == "/api/runs":
                return self.send_json({"runs": [r.describe(i) for i, r in enumerate(runs)], "charts": chart_specs()})
            if len(parts) >= 5 and parts[:3] == ["", "api", "runs"] and parts[3].isdigit() \
                    and int(parts[3]) < len(runs):
                run = runs[int(parts[3])]
                if len(parts) == 5 and parts[4] == "rows":
                    since = parse_qs(url.query).get("since", ["0"])[0]
                    return self.send_json(run.update(int(since) if since.isdigit() else 0))
                if len(parts) == 6 and parts[4] == "samples":
                    path = run.sample_file(parts[5])
                    if path is not None:
                        return self.send(path.read_bytes(), "image/png")
            return self.not_found()

    return Handler


def make_server(run_dirs: list[str | Path], host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """The watch server for ``run_dirs`` (not started: call serve_forever, or :func:`start_in_background`)."""
    runs = []
    for d in run_dirs:
        path = Path(d)
        if path.exists() and not path.is_dir():
            raise GanforgeError(f"{path} is a file, not a run directory")
        runs.append(WatchedRun(path))
    if not runs:
        raise GanforgeError("name at least one run directory to watch")
    return listen(host, port, _handler(runs, page("watch.html")))


def start_in_background(run_dirs: list[str | Path], host: str = "127.0.0.1", port: int = 8765):
    """Serve in a daemon thread (it ends with the process); returns (server, url)."""
    server = make_server(run_dirs, host, port)
    threading.Thread(target=server.serve_forever, name="ganforge-watch", daemon=True).start()
    return server, url_of(server)
