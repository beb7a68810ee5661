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
