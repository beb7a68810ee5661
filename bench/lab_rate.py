"""How fast `ganforge lab` trains while it draws: steps per second with no page open, and with one
and two headless Chromium tabs drawing every picture.

    python bench/lab_rate.py [--seconds 8] [--repeats 2] [--threads 1] [--set game=mm --set d_steps=5 ...]

Each measurement plays the lab at full speed for --seconds and counts the steps the session took
(from the server's state), alternating the three cases --repeats times so that the machine's noise
falls on all alike. Also prints the pictures per second the worker published and the time one
picture takes to draw on the server (D on the heat-map grid, G on the fakes and the z-grid, the
pull on each fake).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import urllib.request

import torch

from ganforge.lab import LabSession, LabSettings
from ganforge.lab.server import start_in_background


def quiet(*_):
    pass


def command(url: str, body: dict) -> dict:
    req = urllib.request.Request(url + "api/command", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as reply:
        return json.loads(reply.read())


def state(url: str) -> dict:
    with urllib.request.urlopen(url + "api/state?since=0", timeout=10) as reply:
        return json.loads(reply.read())


def measure(url: str, worker, seconds: float) -> tuple[float, float]:
    """(steps/s, pictures/s) over ``seconds`` of play."""
    command(url, {"do": "play"})
    time.sleep(0.5)  # past the first frame
    s0, v0, t0 = state(url)["step"], worker.version, time.perf_counter()
    time.sleep(seconds)
    s1, v1, t1 = state(url)["step"], worker.version, time.perf_counter()
    command(url, {"do": "pause"})
    return (s1 - s0) / (t1 - t0), (v1 - v0) / (t1 - t0)


def parse_settings(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = json.loads(value) if value[:1].isdigit() or value[:1] in "-[" else value
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="PyTorch threads (as `ganforge lab --threads`)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a lab setting, e.g. d_steps=5")
    args = ap.parse_args()
    settings = LabSettings(**parse_settings(args.set)).checked()
    torch.set_num_threads(args.threads)

    session = LabSession(settings, log=quiet)
    session.step()
    t = time.perf_counter()
    for _ in range(200):
        session.picture()
    picture_ms = (time.perf_counter() - t) / 200 * 1000

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    results: dict[str, list[tuple[float, float]]] = {"no page": [], "one tab": [], "two tabs": []}
    with tempfile.TemporaryDirectory() as runs:
        server, worker, url = start_in_background(port=0, runs_root=runs, settings=settings, log=quiet)
        try:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox",
                                                                            "--disable-gpu"])
                for _ in range(args.repeats):
                    results["no page"].append(measure(url, worker, args.seconds))
                    tabs = []
                    for case in ("one tab", "two tabs"):
                        tab = browser.new_page(viewport={"width": 1300, "height": 1250})
                        tab.goto(url)
                        tab.wait_for_function("lab.pic !== null", timeout=10_000)
                        tabs.append(tab)
                        results[case].append(measure(url, worker, args.seconds))
                    for tab in tabs:
                        tab.close()
                browser.close()
        finally:
            worker.close()
            server.shutdown()
    print(f"lab settings: {json.dumps(settings.__dict__)}; {args.threads} PyTorch thread(s)")
    print(f"one picture on the server: {picture_ms:.2f} ms")
    for case, values in results.items():
        steps = statistics.median(v[0] for v in values)
        pictures = statistics.median(v[1] for v in values)
        print(f"{case:9s}: {steps:7.0f} steps/s, {pictures:5.1f} pictures/s  "
              f"(runs: {', '.join(f'{v[0]:.0f}' for v in values)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
