"""The lab's server: one worker thread owns the session (and so every PyTorch call); the page's
requests only read what it published or hand it commands.

    GET  /                                  the page (web/lab.html; no external scripts or fonts)
    GET  /api/state?since=V&session=S&rows=N  the newest picture once its version is past V (waits
                                            up to 2 s), with the log rows from row N of session S
    POST /api/command  {"do": ...}          play, pause, step, step-d, step-g, reset, speed
                                            ({"steps_per_s": 0 = as fast as it goes}), settings
                                            ({"settings": {...}}), save (a run directory under --runs)

While playing, the worker trains for about a frame (1/15 s), publishes a picture and takes the
commands that came meanwhile. Every open tab sees the same session. Commands must come as
application/json (a page from elsewhere cannot send that without the browser asking first, and
this server never says yes), so no other site can drive the lab.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from ganforge.api import next_run_dir
from ganforge.errors import GanforgeError
from ganforge.lab.session import LabSession, LabSettings
from ganforge.web.server import PageHandler, listen, page, url_of

FRAME_S = 1 / 15          # a picture at most this often while playing
MAX_BODY = 256 * 1024     # bytes a command may have (400 drawn points are ~10 kB)
MAX_ROWS_PER_REPLY = 2000
COMMANDS = ("play", "pause", "step", "step-d", "step-g", "reset", "speed", "settings", "save")


class LabWorker:
    """Drives a :class:`LabSession` in its own thread; :meth:`submit` hands it a command and waits."""

    def __init__(self, session: LabSession, runs_root: Path, log=print):
        self.session, self.runs_root, self.log = session, Path(runs_root), log
        self.commands: queue.Queue = queue.Queue()
        self.changed = threading.Condition()
        self.version, self.picture = 0, None
        self.playing, self.steps_per_s_cap = False, 0.0
        self.rate = deque(maxlen=30)  # (time, step) at recent pictures, for steps per second
        self.closed = False
        self.thread = threading.Thread(target=self.run, name="ganforge-lab", daemon=True)

    def start(self) -> LabWorker:
        self.publish()
        self.thread.start()
        return self

    def close(self) -> None:
        self.closed = True
        with self.changed:
            self.changed.notify_all()

    # -- the worker thread ------------------------------------------------------------------

    def run(self) -> None:
        while not self.closed:
            try:  # wait for a command while paused; only look while playing
                command, reply = self.commands.get(timeout=0.25) if not self.playing else self.commands.get_nowait()
            except queue.Empty:
                command = None
            if command is not None:
                result = self.carry_out(command)
                self.publish()  # before the reply: a page that reads the state next sees the command's effect
                reply.put({**result, "version": self.version})
                continue
            if self.playing:
                self.play_one_frame()

    def play_one_frame(self) -> None:
        """Train for one frame's time (or the capped number of steps), then publish."""
        start = time.perf_counter()
        budget = FRAME_S
        steps = max(1, round(self.steps_per_s_cap * FRAME_S)) if self.steps_per_s_cap else None
        done = 0
        try:
            while (done < steps) if steps else (time.perf_counter() - start < budget):
                self.session.step()
                done += 1
        except GanforgeError:
            self.playing = False  # the session holds the error; the page shows it
        if self.steps_per_s_cap:  # wait out the rest of the frame
            time.sleep(max(0.0, done / self.steps_per_s_cap - (time.perf_counter() - start)))
        self.publish()

    def carry_out(self, command: dict) -> dict:
        """One command from the page; returns the reply (``error`` set when it was refused)."""
        do = command.get("do")
        try:
            if do not in COMMANDS:
                raise GanforgeError(f"unknown command {do!r}; commands: {', '.join(COMMANDS)}")
            if do in ("play", "pause"):
                if do == "play" and self.session.error:
                    raise GanforgeError(f"{self.session.error}; reset to start again")
                self.playing = do == "play"
            elif do in ("step", "step-d", "step-g"):
                self.playing = False
                self.session.step({"step": None, "step-d": "D", "step-g": "G"}[do])
            elif do == "reset":
                self.playing = False
                self.session.start()
            elif do == "speed":
                cap = command.get("steps_per_s", 0)
                if not isinstance(cap, (int, float)) or isinstance(cap, bool) or not 0 <= cap <= 10_000:
                    raise GanforgeError("steps_per_s must be a number from 0 (as fast as it goes) to 10000")
                self.steps_per_s_cap = float(cap)
            elif do == "settings":
                changes = command.get("settings")
                if not isinstance(changes, dict):
                    raise GanforgeError('settings must be an object, e.g. {"game": "mm"}')
                if self.session.apply(changes):
                    self.playing = False
            elif do == "save":
                self.playing = False
                run_dir = self.session.save(next_run_dir(self.runs_root, self.session.cfg.name))
                self.log(f"lab: saved the session as {run_dir}")
                return {"ok": True, "saved": str(run_dir)}
            return {"ok": True}
        except GanforgeError as exc:
            return {"error": str(exc)}

    def publish(self) -> None:
        """Draw the session and wake every waiting page."""
        picture = self.session.picture()
        now = time.perf_counter()
        self.rate.append((now, picture["step"]))
        (t0, s0), (t1, s1) = self.rate[0], self.rate[-1]
        picture["steps_per_s"] = round((s1 - s0) / (t1 - t0), 1) if self.playing and t1 > t0 and s1 >= s0 else 0.0
        if not self.playing:
            self.rate.clear()
        picture["playing"], picture["speed_cap"] = self.playing, self.steps_per_s_cap
        with self.changed:
            self.version += 1
            picture["version"] = self.version
            self.picture, self.rows, self.session_id = picture, self.session.rows, self.session.session_id
            self.changed.notify_all()

    # -- called from the request threads ----------------------------------------------------

    def submit(self, command: dict, timeout_s: float = 120.0) -> dict:
        reply: queue.Queue = queue.Queue()
        self.commands.put((command, reply))
        try:
            return reply.get(timeout=timeout_s)
        except queue.Empty:
            return {"error": "the lab is busy; try again"}

    def state(self, since: int, session: int, rows_from: int, wait_s: float = 2.0) -> dict:
        """The newest picture once its version is past ``since`` (or after ``wait_s``), with the
        log rows of the client's session from ``rows_from`` on (all rows when the session changed)."""
        with self.changed:
            self.changed.wait_for(lambda: self.version > since or self.closed, timeout=wait_s)
            picture, rows, current = self.picture, self.rows, self.session_id
        start = rows_from if session == current else 0
        start = max(0, min(start, len(rows)))
        return {**picture, "rows_from": start, "rows": rows[start:start + MAX_ROWS_PER_REPLY]}


def _handler(worker: LabWorker, page_bytes: bytes):
    class Handler(PageHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            url = urlparse(self.path)
            if url.path in ("/", "/index.html"):
                return self.send(page_bytes, "text/html; charset=utf-8")
            if url.path == "/api/state":
                query = parse_qs(url.query)

                def number(key: str) -> int:
                    value = query.get(key, ["0"])[0]
                    return int(value) if value.isdigit() else 0

                return self.send_json(worker.state(number("since"), number("session"), number("rows")))
            return self.not_found()

        def do_POST(self) -> None:  # noqa: N802
            if urlparse(self.path).path != "/api/command":
                return self.not_found()
            if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                return self.send_json({"error": "send commands as application/json"}, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            length = self.headers.get("Content-Length", "")
            if not length.isdigit() or int(length) > MAX_BODY:
                return self.send_json({"error": f"a command must say its length and be under {MAX_BODY} bytes"},
                                      HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            try:
                command = json.loads(self.rfile.read(int(length)))
            except ValueError:
                return self.send_json({"error": "a command must be JSON"}, HTTPStatus.BAD_REQUEST)
            if not isinstance(command, dict):
                return self.send_json({"error": 'a command is an object such as {"do": "step"}'},
                                      HTTPStatus.BAD_REQUEST)
            reply = worker.submit(command)
            return self.send_json(reply, HTTPStatus.BAD_REQUEST if "error" in reply else HTTPStatus.OK)

    return Handler


def make_lab(host: str = "127.0.0.1", port: int = 8766, runs_root: str | Path = "runs",
             settings: LabSettings | None = None, log=print):
    """(server, worker): the lab's HTTP server (not yet serving) and its running worker."""
    session = LabSession(settings, log=log)
    worker = LabWorker(session, Path(runs_root), log)
    server = listen(host, port, _handler(worker, page("lab.html")))
    worker.start()
    return server, worker


def start_in_background(host: str = "127.0.0.1", port: int = 8766, runs_root: str | Path = "runs",
                        settings: LabSettings | None = None, log=print):
    """Serve in a daemon thread; returns (server, worker, url)."""
    server, worker = make_lab(host, port, runs_root, settings, log)
    threading.Thread(target=server.serve_forever, name="ganforge-lab-http", daemon=True).start()
    return server, worker, url_of(server)
