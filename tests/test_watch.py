"""`ganforge watch`: the live page in headless Chromium (Playwright, Debian's chromium) over real runs.

- the page shows a run's step, curves and sample grid, and a row appended to metrics.jsonl
  within seconds; an alert row appears as an alert; two runs share the charts;
- when the server stops the page says so and keeps what it has;
- the server answers nothing outside the runs it was given (path traversal is a 404);
- `ganforge train --watch` serves the run being trained.
Screenshots go to test-artifacts/.
"""

import json
import time
import urllib.error
import urllib.request

import pytest

import ganforge
from ganforge.config import load_config
from ganforge.watch import start_in_background
from test_report import ARTIFACTS, _require_browser, launch_chromium, open_live_page


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("watched")
    runs = []
    for name, loss in (("ring-ns", "ns"), ("ring-mm", "mm")):
        cfg = load_config("toy-ring", ["train.steps=400", "train.sample_every=100", "train.checkpoint_every=0",
                                       "train.log_every=25",
                                       f"method.loss={loss}"])
        runs.append(ganforge.train(cfg, root / name, progress=False, log=quiet))
    return runs


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_the_server_serves_only_the_runs_it_was_given(two_runs):
    server, url = start_in_background(two_runs, port=0)
    try:
        status, body = get(url + "api/runs")
        info = json.loads(body)
        assert status == 200 and [r["name"] for r in info["runs"]] == ["ring-ns", "ring-mm"]
        assert {c["id"] for c in info["charts"]} >= {"losses", "d-outputs", "gradients"}
        status, body = get(url + "api/runs/0/rows?since=2")
        reply = json.loads(body)
        assert reply["from"] == 2 and reply["total"] >= 16 and reply["finished"] and len(reply["samples"]) == 4
        status, body = get(url + "api/runs/0/samples/" + reply["samples"][0])
        assert status == 200 and body.startswith(b"\x89PNG")
        for path in ("api/runs/0/samples/..%2f..%2fconfig.json", "api/runs/0/samples/../config.json",
                     "api/runs/0/samples/%2e%2e/metrics.jsonl", "api/runs/2/rows", "api/runs/-1/rows",
                     "api/runs/0/../../etc/passwd", "../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd",
                     "api/runs/0/samples/config.json", "api/runs/0/metrics.jsonl", "favicon.ico"):
            assert get(url + path)[0] == 404, path
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_the_page_follows_runs_live(two_runs, tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    server, url = start_in_background(two_runs, port=0)
    metrics = two_runs[0] / "metrics.jsonl"
    original = metrics.read_text()
    errors = []
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = open_live_page(browser, url, errors, 1000)
            page.wait_for_selector("#run-0[data-step='400']", timeout=10_000)
            page.wait_for_selector("#chart-losses canvas", timeout=10_000)
            assert "ring-mm: generator L_G" in page.inner_text("#chart-losses")  # both runs on one chart
            assert page.is_visible("#samples-0 img") and "step 400" in page.inner_text("#samples-0 figcaption")
            page.screenshot(path=str(ARTIFACTS / "watch-two-runs.png"), full_page=True)
            # A new row and an alert, appended as training would: shown within seconds.
            row = {"step": 500, "kimg": 128.0, "loss/D": 1.2, "loss/G": 0.8, "D_x": 0.5, "D_G_z": 0.4,
                   "img_per_s": 1000.0, "time_s": 99.0}
            alert = {"step": 500, "kimg": 128.0, "alert": "vanishing-gradient", "message": "D wins",
                     "suggestion": "use the non-saturating loss"}
            with open(metrics, "a") as f:
                f.write(json.dumps(row) + "\n" + json.dumps(alert) + "\n")
            start = time.monotonic()
            page.wait_for_selector("#run-0[data-step='500']", timeout=5_000)
            latency = time.monotonic() - start
            page.wait_for_selector(".alert[data-alert='vanishing-gradient']", timeout=5_000)
            assert "use the non-saturating loss" in page.inner_text("#alerts")
            assert errors == [], errors
            # The server stops: the page says so and keeps what it drew (its failed polls are expected).
            server.shutdown()
            server.server_close()
            page.wait_for_selector("#banner", state="visible", timeout=8_000)
            assert page.get_attribute("#run-0", "data-step") == "500"
            page.screenshot(path=str(ARTIFACTS / "watch-server-stopped.png"), full_page=True)
            browser.close()
    finally:
        metrics.write_text(original)
        server.shutdown()
    assert latency < 5, latency
    print(f"watch: a new row showed after {latency:.2f} s", flush=True)


def test_train_with_watch_serves_the_run_while_it_trains(tmp_path, python_exe):
    import re
    import subprocess

    out = tmp_path / "run"
    proc = subprocess.Popen([python_exe, "-m", "ganforge", "train", "toy-ring", "--set", "train.steps=3000",
                             "--set", "train.checkpoint_every=0", "--out", str(out), "--quiet", "--watch", "0"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        url = None
        for line in proc.stderr:
            found = re.search(r"watch the run at (http://127\.0\.0\.1:\d+/)", line)
            if found:
                url = found.group(1)
                break
        assert url, "no watch address printed"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the run's rows, read through the page's API while it trains
            rows = json.loads(get(url + "api/runs/0/rows")[1])
            if rows["total"] and not rows["finished"]:
                break
            time.sleep(0.2)
        assert rows["total"] > 0 and json.loads(get(url + "api/runs")[1])["runs"][0]["name"] == "run"
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0
