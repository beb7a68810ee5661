"""report.html: built from real short runs, checked as a file and in a real headless browser
(Debian's chromium through Playwright). Screenshots go to test-artifacts/."""

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ganforge
from ganforge.config import load_config

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IMAGE_CHARTS = ["chart-losses", "chart-d-outputs", "chart-d-accuracy", "chart-gradients", "chart-diversity"]


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """demo-vanishing-gradient, short: alerts, every chart, a few sample grids (~12 s)."""
    cfg = load_config("demo-vanishing-gradient", ["train.steps=240", "train.sample_every=60"])
    return ganforge.train(cfg, tmp_path_factory.mktemp("runs") / "vanishing", progress=False, log=quiet)


@pytest.fixture(scope="module")
def points_run(tmp_path_factory):
    """toy-ring, short: the 2-D scatter over D's heat map at every sample step (~6 s)."""
    cfg = load_config("toy-ring", ["train.steps=1200", "train.sample_every=200", "train.checkpoint_every=0"])
    return ganforge.train(cfg, tmp_path_factory.mktemp("runs") / "ring", progress=False, log=quiet)


def test_report_is_written_at_the_end_of_training_and_self_contained(image_run):
    page = (image_run / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    # Nothing to fetch: every image is inline, and no script, link or remote URL is referenced.
    assert not re.search(r"(src|href)=['\"](?!data:)", page)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    for chart in IMAGE_CHARTS:
        assert f"id='{chart}'" in page
    assert "data-alert='vanishing-gradient'" in page
    assert page.count("id='samples-") == 4  # steps 60, 120, 180 and the final 240
    assert '"loss": "mm"' in html.unescape(page)  # the config, escaped as HTML


def test_report_command_rewrites_the_page(image_run, tmp_path, python_exe):
    out = tmp_path / "copy.html"
    res = subprocess.run([python_exe, "-m", "ganforge", "report", str(image_run), "-o", str(out), "--json"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"report": str(out)}
    assert out.read_text() == (image_run / "report.html").read_text()
    res = subprocess.run([python_exe, "-m", "ganforge", "report", str(tmp_path / "nope")], capture_output=True,
                         text=True)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "no run directory" in res.stderr


def _open_in_chromium(report: Path, screenshot: Path) -> dict:
    """Load the page headless; return console errors, page errors, requests and image states."""
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    found = {"console_errors": [], "page_errors": [], "requests": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=flags)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: m.type == "error" and found["console_errors"].append(m.text))
        page.on("pageerror", lambda e: found["page_errors"].append(str(e)))
        page.on("request", lambda r: found["requests"].append(r.url[:40]))
        page.goto(report.as_uri(), wait_until="load")
        found["images"] = page.evaluate(
            "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth, "
            "h: i.naturalHeight, shown: i.getBoundingClientRect().width}))")
        found["figures"] = page.evaluate("Array.from(document.querySelectorAll('figure')).map(f => f.id)")
        found["title"] = page.title()
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return found


#: Chromium flags for the live pages (watch, lab): served from this machine, nothing else fetched
LIVE_PAGE_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def launch_chromium(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, args=LIVE_PAGE_FLAGS)


def open_live_page(browser, url: str, errors: list, height: int):
    """A 1300-px-wide tab on ``url`` whose script errors and console errors go into ``errors``."""
    page = browser.new_page(viewport={"width": 1300, "height": height})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(url)
    return page


def _require_browser():
    if CHROMIUM is None:
        if os.environ.get("GANFORGE_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed; `make test` installs it (make browser)")
        pytest.skip("chromium is not installed (make browser)")
    pytest.importorskip("playwright")


@pytest.mark.parametrize("which", ["image_run", "points_run"])
def test_report_in_headless_chromium(which, request):
    _require_browser()
    run = request.getfixturevalue(which)
    shot = ARTIFACTS / f"report-{which}.png"
    found = _open_in_chromium(run / "report.html", shot)
    assert found["console_errors"] == [] and found["page_errors"] == [], found
    # Only the page itself is requested (data: images are not network requests).
    assert [u for u in found["requests"] if not u.startswith(("file://", "data:"))] == []
    assert found["title"].startswith("ganforge report")
    assert found["images"], "no images on the page"
    for img in found["images"]:
        assert img["complete"] and img["w"] > 50 and img["h"] > 50 and img["shown"] > 50, img  # decoded, drawn
    charts = IMAGE_CHARTS if which == "image_run" else ["chart-losses", "chart-d-outputs", "chart-gradients",
                                                        "chart-diversity"]
    for chart in charts:
        assert chart in found["figures"], (chart, found["figures"])
    assert sum(f.startswith("samples-") for f in found["figures"]) >= 4
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}", file=sys.stderr)


def test_tensorboard_logging_of_scalars_images_and_alerts(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config("demo-vanishing-gradient", ["train.steps=200", "train.sample_every=100",
                                                  "train.tensorboard=true"])
    run = ganforge.train(cfg, tmp_path / "tb", progress=False, log=quiet)
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("loss/D", "loss/G", "D_x", "D_G_z", "D_acc_fake", "G_out_grad", "health/diversity"):
        assert tag in tags["scalars"], tag
    d_g_z = events.Scalars("D_G_z")
    assert [e.step for e in d_g_z] == list(range(20, 201, 20))
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "D_G_z" in x]
    assert [round(e.value, 5) for e in d_g_z] == [round(r["D_G_z"], 5) for r in rows]
    assert [e.step for e in events.Images("samples")] == [100, 200]
    assert "alerts/vanishing-gradient/text_summary" in tags["tensors"]


def _fake_run(folder: Path, diversity: list[float], loss_g: list[float], *, finished: bool, source="mnist") -> Path:
    """A run directory with hand-written metrics rows (no training), for the report's words."""
    folder.mkdir(parents=True)
    config = {"name": "dcgan-mnist", "data": {"source": source, "path": "/data/my-cats" if source == "folder" else ""},
              "model": {"arch": "dcgan"}, "method": {"name": "gan", "loss": "ns"},
              "train": {"steps": 50 * len(diversity) if finished else 1000}}
    (folder / "config.json").write_text(json.dumps(config))
    rows = [{"step": 50 * (i + 1), "kimg": 3.2 * (i + 1), "time_s": 10.0 * i, "loss/D": 1.2, "loss/G": g,
             "D_x": 0.6, "D_G_z": 0.4, "G_out_grad": 0.01, "health/diversity": d}
            for i, (d, g) in enumerate(zip(diversity, loss_g, strict=True))]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if finished:
        (folder / "summary.json").write_text(json.dumps({"objective": "ns loss", "time_s": 100}))
    return folder


def test_report_says_what_its_numbers_show(tmp_path):
    """A run whose diversity stays under the collapse line while rising (no alert fires) and whose
    L_G climbs must not be called healthy; an unfinished run says so; a folder run is not titled
    with the preset's name."""
    from ganforge.report.html import write_report

    collapsed = _fake_run(tmp_path / "collapsed", [0.10 + 0.005 * i for i in range(14)],
                          [0.8 + 0.4 * i for i in range(14)], finished=False, source="folder")
    page = html.unescape(write_report(collapsed).read_text())
    assert "samples stayed diverse" not in page
    assert "diversity ended at 0.17 of the real data's, at or below the mode-collapse line of 0.25" in page
    assert "L_G climbed from 1.00 to 5.80" in page and "UNFINISHED: 700 of 1,000 steps" in page
    assert "<h1>collapsed (dcgan-mnist on my-cats)</h1>" in page
    assert "This run (first tenth to last tenth of its rows): L_D from 1.2 to 1.2, L_G from 1 to 5.8." in page

    healthy = _fake_run(tmp_path / "healthy", [0.8] * 14, [1.0] * 14, finished=True)
    page = html.unescape(write_report(healthy).read_text())
    assert "samples stayed diverse (0.80 to 0.80 of the real data's spread)" in page
    assert "But " not in page and "UNFINISHED" not in page and "<h1>dcgan-mnist</h1>" in page
