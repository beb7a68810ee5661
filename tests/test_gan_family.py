"""The GAN family on the shared loop: method defaults, every game trains, clipping holds."""

import json

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge.config import load_config
from ganforge.errors import GanforgeError
from ganforge.train.checkpoint import latest_checkpoint

TINY = ["model.g_width=32", "model.d_width=32", "model.g_depth=2", "model.d_depth=2", "train.batch_size=64",
        "train.log_every=10", "train.sample_every=0", "train.checkpoint_every=0", "data.toy_points=4000",
        "train.eval_samples=200", "method.r1_gamma=0", "method.ema_halflife_kimg=0"]


def test_wgan_gp_paper_defaults_and_overrides():
    cfg = load_config("toy-grid-wgan-gp")
    m = cfg.method
    assert (m.loss, m.d_steps, m.lr_d, m.beta1, m.beta2, m.gp_weight) == ("wgan", 5, 1e-4, 0.0, 0.9, 10.0)
    assert load_config("toy-grid-wgan-gp", ["method.d_steps=3"]).method.d_steps == 3
    with pytest.raises(GanforgeError, match="method wgan-gp plays the wgan game"):
        load_config("toy-grid-wgan-gp", ["method.loss=ns"])
    assert load_config("wgan-gp-mnist").model.d_norm == "layer"


@pytest.mark.parametrize("overrides", [
    ["method.loss=hinge"], ["method.loss=lsgan"], ["method.loss=mm"],
    ["method.loss=hinge", "model.spectral_norm=true"], ["method.name=wgan-gp", "method.d_steps=2"],
])
def test_every_game_trains_on_the_shared_loop(tmp_path, overrides):
    cfg = load_config("toy-ring", TINY + ["train.steps=30"] + overrides)
    run = ganforge.train(cfg, tmp_path / "r", progress=False, log=lambda *_: None)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    probabilistic = cfg.method.loss in ("ns", "mm")
    assert ("D_x" in rows[-1]) == probabilistic and ("D_out_real" in rows[-1]) != probabilistic
    if cfg.method.name == "wgan-gp":
        assert rows[-1]["gp"] >= 0 and rows[-1]["kimg"] == pytest.approx(30 * 2 * 64 / 1000)
    assert (run / "loss_curves.png").is_file()


def test_wgan_weight_clipping_holds_after_training(tmp_path):
    cfg = load_config("toy-ring", TINY + ["train.steps=20", "method.name=wgan", "method.clip=0.02"])
    run = ganforge.train(cfg, tmp_path / "w", progress=False, log=lambda *_: None)
    weights = load_file(str(latest_checkpoint(run) / "models.safetensors"))
    d = [v for k, v in weights.items() if k.startswith("D.")]
    assert max(float(v.abs().max()) for v in d) <= 0.02 + 1e-7
    g = [v for k, v in weights.items() if k.startswith("G.")]
    assert max(float(v.abs().max()) for v in g) > 0.02  # only the critic is clipped
    assert torch.isfinite(torch.cat([v.flatten() for v in d])).all()
