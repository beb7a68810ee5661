"""The command line end to end, and its one-line errors."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from ganforge.cli import main

TINY = ["--set", "train.steps=30", "--set", "model.g_width=32", "--set", "model.d_width=32",
        "--set", "train.batch_size=64", "--set", "data.toy_points=4000", "--set", "train.log_every=10",
        "--set", "train.eval_samples=500"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_presets_one_line_each(capsys):
    code, out, _ = run_cli(capsys, "presets")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) >= 4
    assert any(line.startswith("dcgan-mnist ") for line in lines)
    code, out, _ = run_cli(capsys, "presets", "--json")
    assert "toy-grid" in json.loads(out)


def test_train_sample_evaluate_resume(tmp_path, capsys):
    run = tmp_path / "ring"
    code, out, _ = run_cli(capsys, "train", "toy-ring", "--out", str(run), "--quiet", "--json", *TINY)
    assert code == 0
    summary = json.loads(out)
    assert summary["step"] == 30 and summary["evaluation"]["modes_total"] == 8
    # img/s counts training time only; the set-up before it is reported on its own
    assert summary["setup_s"] >= 0 and summary["img_per_s"] == pytest.approx(summary["kimg"] * 1000 / summary["time_s"],
                                                                            rel=1e-3)
    assert "set-up before training, not counted: " in (run / "summary.txt").read_text()
    for name in ("config.json", "metrics.jsonl", "loss_curves.png", "summary.txt", "eval.json",
                 "samples/step_000000030.png"):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert {"loss/D", "loss/G", "D_x", "D_G_z", "grad_norm/D", "grad_norm/G", "kimg", "img_per_s"} <= set(rows[0])
    assert rows[-1]["kimg"] == pytest.approx(30 * 64 / 1000)

    code, out, _ = run_cli(capsys, "sample", str(run), "-n", "200", "--seed", "3", "-o",
                           str(tmp_path / "s.png"), "--json")
    assert code == 0 and json.loads(out)["step"] == 30
    assert Image.open(tmp_path / "s.png").size[0] > 100

    code, out, _ = run_cli(capsys, "evaluate", str(run), "--json")
    result = json.loads(out)
    assert code == 0 and set(result["modes"]) >= {"modes", "high_quality", "reverse_kl"}
    assert result["modes"]["n"] == 500

    code, out, _ = run_cli(capsys, "train", "--resume", str(run), "--set", "train.steps=40", "--quiet", "--json")
    assert code == 0 and json.loads(out)["step"] == 40


def test_sample_images_are_deterministic(tmp_path, capsys):
    run = tmp_path / "digits"
    code, *_ = run_cli(capsys, "train", "dcgan-mnist", "--out", str(run), "--quiet",
                       "--set", "data.source=digits", "--set", "data.resolution=28",
                       "--set", "train.steps=3", "--set", "train.batch_size=16", "--set", "model.g_width=8",
                       "--set", "model.d_width=8")
    assert code == 0
    for name in ("a.png", "b.png"):
        assert run_cli(capsys, "sample", str(run), "-n", "16", "--seed", "1", "-o", str(tmp_path / name))[0] == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    img = Image.open(tmp_path / "a.png")
    assert img.mode == "L"


@pytest.mark.parametrize("argv, message", [
    (["train", "dcgan-mnsit"], "unknown preset 'dcgan-mnsit' (did you mean 'dcgan-mnist'?)"),
    (["train", "toy-ring", "--set", "train.stepz=3"], "unknown config key 'train.stepz' (did you mean 'steps'?)"),
    (["train", "toy-ring", "--set", "train.batch_size=-1"], "train.batch_size must be >= 1"),
    (["sample", "/nonexistent/run"], "is not a ganforge run directory"),
    (["train", "dcgan-mnist", "--set", "data.source=folder", "--set", "data.path=/nonexistent"],
     "image folder '/nonexistent' does not exist"),
    (["data", "fetch", "mnits"], "unknown dataset 'mnits' (did you mean 'mnist'?)"),
])
def test_errors_are_one_line(tmp_path, capsys, argv, message):
    if "--set" in argv or argv[0] == "train":
        argv = argv + ["--out", str(tmp_path / "run"), "--quiet"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 1
    assert err.startswith("ganforge: error: ") and message in err
    assert err.count("\n") == 1, err


def test_run_without_checkpoint_has_clear_error(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text("{}")
    code, _, err = run_cli(capsys, "sample", str(run))
    assert code == 1 and "has no checkpoint with a generator yet" in err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "ganforge", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("train", "sample", "evaluate", "data", "presets"):
        assert cmd in out.stdout
