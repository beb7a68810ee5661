"""Short real training runs that must reach a stated result."""

import json
import math

import pytest
import torch

import ganforge
from ganforge.config import DataConfig, load_config
from ganforge.data import DataSpec, load_dataset
from ganforge.methods import build_method


def quiet(*_):
    pass


def test_toy_ring_covers_all_modes(tmp_path):
    # The shipped preset's architecture with a third of its budget (~15 s on 2 cores).
    cfg = load_config("toy-ring", ["train.steps=4000", "train.sample_every=0", "train.checkpoint_every=0"])
    run = ganforge.train(cfg, tmp_path / "ring", progress=False, log=quiet)
    ev = json.loads((run / "eval.json").read_text())
    assert ev["modes"] == 8, ev
    assert ev["high_quality"] > 0.3, ev
    assert ev["reverse_kl"] < 0.3, ev  # log 8 = 2.08 when collapsed to one mode


def test_dcgan_learns_mnist_statistics(tmp_path):
    """After 32k images a small DCGAN's samples have MNIST's pixel statistics: mostly black
    background (value -1) with a minority of bright stroke pixels. An untrained generator's
    tanh outputs sit near 0 (background fraction ~0.0; 0.04 after 100 steps, 0.40 after 200,
    0.80 after 500 in the run this test reproduces), so the checks fail early in training."""
    cfg = load_config("dcgan-mnist", ["train.steps=500", "train.batch_size=64", "model.g_width=32",
                                      "model.d_width=32", "train.sample_every=0", "train.checkpoint_every=0"])
    run = ganforge.train(cfg, tmp_path / "mnist", progress=False, log=quiet)
    fake = ganforge.load_run(run).sample(256, seed=0)
    real = load_dataset(DataConfig(source="mnist")).x[:256].float() / 127.5 - 1

    def background(x):
        return float((x < -0.8).float().mean())

    def strokes(x):
        return float((x > 0.5).float().mean())

    assert background(real) == pytest.approx(0.80, abs=0.03)  # the data itself
    assert abs(background(fake) - background(real)) < 0.08, background(fake)
    assert 0.05 < strokes(fake) < 0.2, strokes(fake)  # real: 0.10
    # The generator is not collapsed to one image: samples differ as much as real digits do.
    spread = torch.cdist(fake.flatten(1), fake.flatten(1)).mean() / torch.cdist(real.flatten(1), real.flatten(1)).mean()
    assert spread > 0.8, float(spread)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(0 < r["D_x"] < 1 and 0 < r["D_G_z"] < 1 for r in rows)


def test_cpu_training_keeps_freed_memory_for_reuse():
    """On glibc Linux (this machine and CI) selecting the CPU raises the allocator's mmap and trim
    thresholds (train/allocator.py); mallopt says whether it took them."""
    import sys

    from ganforge.train.allocator import keep_freed_memory
    from ganforge.train.loop import select_device

    assert select_device("cpu").type == "cpu"
    assert keep_freed_memory() is (sys.platform.startswith("linux"))


def test_compiled_training_runs_penalty_phases_uncompiled_and_resumes(tmp_path):
    """train.compile: WGAN-GP's critic phase differentiates its gradient penalty, which compiled
    graphs cannot (torch raises on the double backward); the loop runs that phase eagerly and the
    G phase compiled. The checkpoint keeps the eager networks' names, so a run resumes with or
    without compilation."""
    overrides = ["train.steps=12", "train.compile=true", "train.device=cpu", "train.log_every=6",
                 "train.checkpoint_every=6", "data.toy_points=2000"]
    cfg = load_config("toy-grid-wgan-gp", overrides)
    assert [p.double_backward for p in build_method(cfg, DataSpec((2,), False)).phases()] == [True, False]
    run = ganforge.train(cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    ganforge.api.resume(run, ["train.steps=18", "train.compile=false"], progress=False, log=lambda *_: None)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [6, 12, 18]
    assert all(math.isfinite(r["loss/D"]) and r["gp"] > 0 for r in rows)
    assert ganforge.load_run(run).sample(50, seed=0).shape == (50, 2)


@pytest.mark.parametrize("fast", [True, False])
def test_bf16_falls_back_to_fp32_on_a_cpu_without_bf16_arithmetic(tmp_path, monkeypatch, fast):
    """On a CPU without AVX-512 or AMX, bf16 is emulated 30-80x slower than fp32: a bf16 run trains
    in fp32 there, says so once in the log and in the summary, and keeps train.precision=bf16 in
    its config (a resume on a CPU with bf16 arithmetic uses it)."""
    from ganforge.train import precision

    assert precision.bf16_is_fast(torch.device("cuda"))  # the question is only asked of CPUs
    monkeypatch.setattr(precision, "bf16_is_fast", lambda device: fast)
    said = []
    overrides = ["train.steps=4", "train.device=cpu", "train.log_every=2", "train.precision=bf16",
                 "data.toy_points=2000"]
    run = ganforge.train(load_config("toy-ring", overrides), tmp_path / "run", progress=False, log=said.append)
    summary = json.loads((run / "summary.json").read_text())
    notices = [line for line in said if "no bf16 arithmetic" in line]
    assert json.loads((run / "config.json").read_text())["train"]["precision"] == "bf16"
    if fast:
        assert summary["precision"] == "bf16" and "precision_asked" not in summary and not notices
    else:
        assert summary["precision"] == "fp32" and summary["precision_asked"] == "bf16" and len(notices) == 1
        assert "(fp32; bf16 asked, no bf16 arithmetic on this CPU)" in (run / "summary.txt").read_text()


def test_summary_names_every_device_a_resumed_run_trained_on(tmp_path):
    """A run continued on another device says so ("on cuda, then cpu"): its time and img/s span
    both. Here the first leg's checkpoint is marked as made on CUDA, as one carried from a GPU is."""
    from ganforge.train import checkpoint as ckpt_io

    overrides = ["train.steps=10", "train.device=cpu", "train.log_every=5", "train.checkpoint_every=5",
                 "data.toy_points=2000"]
    run = ganforge.train(load_config("toy-ring", overrides), tmp_path / "run", progress=False, log=quiet)
    assert json.loads((run / "summary.json").read_text())["device"] == "cpu"
    last = ckpt_io.latest_checkpoint(run)
    state = json.loads((last / "state.json").read_text())
    assert state["devices"] == ["cpu"]
    (last / "state.json").write_text(json.dumps({**state, "devices": ["cuda"]}))
    ganforge.api.resume(run, ["train.steps=15"], progress=False, log=quiet)
    assert json.loads((run / "summary.json").read_text())["device"] == "cuda, then cpu"
    assert "on cuda, then cpu (fp32)" in (run / "summary.txt").read_text()
    assert json.loads((ckpt_io.latest_checkpoint(run) / "state.json").read_text())["devices"] == ["cuda", "cpu"]
    ganforge.api.resume(run, ["train.steps=20"], progress=False, log=quiet)  # on the same device: no repeat
    assert json.loads((run / "summary.json").read_text())["device"] == "cuda, then cpu"
