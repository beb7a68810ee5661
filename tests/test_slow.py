"""The shipped presets at their full budget (minutes each): `make test-slow`."""

import json

import pytest

import ganforge
from ganforge.config import load_config

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("preset, modes", [("toy-ring", 8), ("toy-grid", 25)])
def test_toy_preset_covers_every_mode_with_high_quality(tmp_path, preset, modes):
    cfg = load_config(preset, ["train.sample_every=0", "train.checkpoint_every=0"])
    run = ganforge.train(cfg, tmp_path / preset, progress=False, log=lambda *_: None)
    ev = json.loads((run / "eval.json").read_text())
    assert ev["modes"] == modes and ev["high_quality"] >= 0.9, ev


def test_mlp_vae_preset_reaches_the_likelihood_target(tmp_path):
    """vae-mlp-mnist at its full budget (about 14 minutes on 2 CPU cores), then the test NLL with
    k = 5,000 on the first 2,000 test images (about 90 s). Measured: 86.93 nats on these 2,000 and
    87.28 +- 0.22 on all 10,000; the issue's target is <= 88."""
    from ganforge.autoencoding import likelihood

    cfg = load_config("vae-mlp-mnist", ["train.sample_every=0", "train.checkpoint_every=0"])
    run = ganforge.train(cfg, tmp_path / "vae", progress=False, log=lambda *_: None)
    card = likelihood(ganforge.load_run(run), k=5000, n=2000, log=lambda *_: None)
    assert card["nll"] <= 88.0, card
    assert card["nll"] < card["neg_elbo"] < card["nll"] + 10, card  # the importance-sampling gap


def test_iwae_preset_beats_the_published_vae_likelihood(tmp_path):
    """iwae-mlp-mnist at its full budget (about 50 minutes on one core), then the test NLL with
    k = 5,000 on the first 2,000 test images. Measured: 84.34 +- 0.22 nats on all 10,000 (seed 0);
    issue 22's goal is <= 86.0 (published VAE 86.76, IWAE k = 50 84.78)."""
    from ganforge.autoencoding import likelihood

    cfg = load_config("iwae-mlp-mnist", ["train.sample_every=0", "train.checkpoint_every=0"])
    run = ganforge.train(cfg, tmp_path / "iwae", progress=False, log=lambda *_: None)
    card = likelihood(ganforge.load_run(run), k=5000, n=2000, log=lambda *_: None)
    assert card["nll"] <= 86.0, card


def test_one_class_mnist_mean_auroc(tmp_path):
    """The one-class protocol with the default preset and score (about 6 minutes on 2 cores):
    measured for seed 0, combined 98.28 %, error 95.66 %, every digit >= 96.3 % combined."""
    from ganforge.anomaly import one_class

    summary = one_class("ae-mnist-anomaly", list(range(10)), tmp_path / "oc", log=lambda *_: None)
    assert summary["kind"] == "combined" and summary["mean_auroc"] >= 0.978, summary
    assert min(r["auroc"] for r in summary["classes"]) >= 0.95, summary
    assert summary["mean_auroc_by_score"]["error"] >= 0.95, summary
