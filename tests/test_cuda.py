"""The CUDA path (skipped on machines without a GPU, such as CI)."""

import json

import pytest
import torch

import ganforge
from ganforge.config import load_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_train_resume_and_sample_on_cuda(tmp_path):
    overrides = ["train.steps=40", "train.device=cuda", "train.checkpoint_every=20", "train.log_every=10",
                 "data.toy_points=4000", "train.batch_size=128", "method.ema_halflife_kimg=1"]
    run = ganforge.train(load_config("toy-ring", overrides), tmp_path / "ring", progress=False, log=lambda *_: None)
    ganforge.api.resume(run, ["train.steps=60"], progress=False, log=lambda *_: None)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 60
    points = ganforge.load_run(run, device="cuda").sample(100, seed=0)
    assert points.shape == (100, 2) and points.device.type == "cpu"


def test_dcgan_bf16_channels_last_on_cuda(tmp_path):
    cfg = load_config("dcgan-mnist", ["data.source=digits", "data.resolution=32", "train.steps=20",
                                      "train.batch_size=32", "train.device=cuda", "train.sample_every=0"])
    run = ganforge.train(cfg, tmp_path / "d", progress=False, log=lambda *_: None)
    images = ganforge.load_run(run).sample(8, seed=0)
    assert images.shape == (8, 1, 32, 32) and torch.isfinite(images).all()
