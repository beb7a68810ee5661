"""Controllable generation: interpolation, latent directions by linear probe, edits."""

import json
import math

import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.config import load_config
from ganforge.errors import GanforgeError
from ganforge.latent import parse_amounts, slerp


def test_slerp_endpoints_and_norm():
    z0, z1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    path = slerp(z0, z1, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], z0[0], atol=1e-6) and torch.allclose(path[-1], z1[0], atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)  # on the circle, unlike lerp
    assert torch.allclose(path[2], torch.tensor([math.sqrt(0.5)] * 2), atol=1e-6)


def test_parse_amounts():
    assert parse_amounts("-3:3:7").tolist() == [-3, -2, -1, 0, 1, 2, 3]
    for bad in ("3", "a:b:c", "1:1:5", "0:1:1"):
        with pytest.raises(GanforgeError, match="--amount"):
            parse_amounts(bad)


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    cfg = load_config("dcgan-mnist", ["train.steps=60", "train.batch_size=32", "model.g_width=16",
                                      "model.d_width=16", "train.sample_every=0", "model.z_dim=16"])
    return ganforge.train(cfg, tmp_path_factory.mktemp("latent") / "run", progress=False, log=lambda *_: None)


def test_interpolate_direction_edit_end_to_end(mnist_run, tmp_path, capsys):
    assert main(["interpolate", str(mnist_run), "--from", "1", "--to", "2", "--steps", "5", "--slerp",
                 "-o", str(tmp_path / "i.png")]) == 0
    capsys.readouterr()
    run = ganforge.load_run(mnist_run)
    # The strip's ends are exactly the seeds' own samples.
    from ganforge.latent import interpolate

    strip = interpolate(run, 1, 2, steps=5)
    assert torch.allclose(strip[0], run.sample(1, seed=1)[0], atol=1e-5)
    assert torch.allclose(strip[-1], run.sample(1, seed=2)[0], atol=1e-5)

    assert main(["directions", str(mnist_run), "--attribute", "7", "-n", "400", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    saved = json.loads((mnist_run / "directions" / "class-7.json").read_text())
    assert record["name"] == "class-7" and record["attribute"] == 7 and 0 <= record["r2"] <= 1
    assert math.isclose(torch.tensor(saved["vector"]).norm().item(), 1.0, rel_tol=1e-6)
    assert len(saved["vector"]) == 16

    # Moving along +d raises log p(7) on average: the probe's own claim, checked on fresh latents.
    assert main(["edit", str(mnist_run), "--seed", "0", "--direction", "class-7", "--amount", "-2:2:5",
                 "-o", str(tmp_path / "e.png"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["strip_target_prob"]) == 5 and result["amounts"] == [-2, -1, 0, 1, 2]
    assert result["target_slope"] > 0
    assert (tmp_path / "e.png").is_file()


def test_latent_errors(mnist_run, capsys):
    for argv, message in (
        (["edit", str(mnist_run), "--direction", "nope"], "unknown direction 'nope'"),
        (["directions", str(mnist_run), "--attribute", "12"], "attribute 12 is out of range"),
        (["directions", str(mnist_run), "--attribute", "7", "--space", "w"], "StyleGAN's intermediate space"),
        (["interpolate", str(mnist_run), "--from", "1", "--to", "2", "--steps", "1"], "--steps must be at least 2"),
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
