"""StyleGAN2: the modulated convolution against the per-sample-weight formula, demodulation,
truncation and style mixing, the path-length penalty, the minibatch standard deviation, the
differentiable augmentations and the lazy-regularisation correction of the optimizers."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from ganforge.config import config_from_dict
from ganforge.data import Batch
from ganforge.data.augment import cutout, parse_policy, translate
from ganforge.errors import GanforgeError
from ganforge.methods.stylegan import mapped_styles, path_length_loss
from ganforge.models.layers import MinibatchStd
from ganforge.models.stylegan import ModulatedConv, StyleGenerator, channels_at, style_count


def quiet(*_):
    pass


def test_modulated_conv_by_activation_scaling_equals_per_sample_weights():
    torch.manual_seed(0)
    conv = ModulatedConv(5, 4, 3, w_dim=6)
    x, w = torch.randn(3, 5, 7, 7), torch.randn(3, 6)
    y = conv(x, w)
    s = conv.affine(w)
    for i in range(3):  # the paper's form: W'_oik = W_oik s_i, then W''_oik = W'_oik / sqrt(sum W'^2)
        weight = conv.weight * conv.scale * s[i][None, :, None, None]
        weight = weight / weight.square().sum((1, 2, 3), keepdim=True).add(1e-8).sqrt()
        assert torch.allclose(y[i:i + 1], F.conv2d(x[i:i + 1], weight, padding=1), atol=1e-5)
    # demodulated: unit-variance inputs give outputs of about unit variance, whatever the style's scale
    big = conv(torch.randn(64, 5, 8, 8), w[:1].expand(64, -1) * 10)
    assert 0.5 < float(big.detach().var()) < 2.0
    plain = ModulatedConv(5, 4, 3, w_dim=6, demodulate=False)
    with torch.no_grad():
        plain.weight.copy_(conv.weight)
        plain.affine.weight.copy_(conv.affine.weight)
    assert torch.allclose(plain(x, w), F.conv2d(x * s[:, :, None, None], conv.weight * conv.scale, padding=1),
                          atol=1e-5)


def test_layout_of_the_synthesis_network():
    assert [style_count(r) for r in (8, 32, 64)] == [4, 8, 10]
    assert [channels_at(r, 128) for r in (4, 16, 32, 64)] == [128, 128, 64, 32]
    G = StyleGenerator(z_dim=8, w_dim=12, resolution=32, channels=3, widest=16, mapping_layers=2)
    assert G(torch.randn(5, 8)).shape == (5, 3, 32, 32)
    assert G.synthesis(torch.randn(5, 8, 12)).shape == (5, 3, 32, 32)  # one w per style input
    with pytest.raises(ValueError, match="power-of-two"):
        StyleGenerator(8, 8, 28)


def test_truncation_in_w_and_style_mixing():
    torch.manual_seed(0)
    G = StyleGenerator(z_dim=8, w_dim=8, resolution=16, channels=1, widest=8, mapping_layers=2)
    G.train()
    for _ in range(50):
        G.w(torch.randn(64, 8))  # w_avg follows the mean of w
    G.eval()
    z = torch.randn(4, 8)
    at_average = G(z, psi=0.0, noise="const")
    assert torch.allclose(at_average, at_average[:1].expand(4, -1, -1, -1), atol=1e-6)  # psi 0: all w_avg
    per_row = G(z, psi=torch.tensor([1.0, 0.5, 0.0, 1.0]), noise="const")
    assert torch.allclose(per_row[[0, 3]], G(z, noise="const")[[0, 3]], atol=1e-6)
    assert torch.allclose(per_row[2], at_average[2], atol=1e-6)
    w_half = G.w_avg + 0.5 * (G.w(z[1:2]) - G.w_avg)
    assert torch.allclose(per_row[1:2], G.synthesis(G.broadcast(w_half), noise="const"), atol=1e-6)
    plain = mapped_styles(G, 6, "cpu", mixing=0.0)
    assert torch.equal(plain, plain[:, :1].expand_as(plain))  # one w for every layer
    mixed = mapped_styles(G, 6, "cpu", mixing=1.0)
    changes = [i for i in range(1, G.n_styles) if not torch.equal(mixed[:, i], mixed[:, i - 1])]
    assert len(changes) == 1  # exactly one cut-off where the second w takes over


def test_path_length_penalty_and_its_running_mean():
    torch.manual_seed(0)
    G = StyleGenerator(z_dim=8, w_dim=8, resolution=8, channels=1, widest=8, mapping_layers=1)
    batch = Batch(torch.zeros(8, 1, 8, 8))
    out = path_length_loss({"G": G}, batch, weight=2.0, mixing=0.0)
    a = float(out["pl_length"])
    assert a > 0 and float(G.pl_mean) == pytest.approx(0.01 * a, rel=1e-5)  # a_bar: 0 -> 0.01 a
    assert float(out["loss"].detach()) == pytest.approx(2.0 * float(out["pl_penalty"]), rel=1e-6)
    out["loss"].backward()
    assert G.mapping.layers[0].weight.grad is not None  # the penalty trains the generator


def test_minibatch_std_feature_by_hand():
    x = torch.stack([torch.zeros(2, 3, 3), torch.full((2, 3, 3), 2.0)] * 2)  # groups of 4: values 0, 2, 0, 2
    y = MinibatchStd(group=4)(x)
    assert y.shape == (4, 3, 3, 3)
    assert torch.allclose(y[:, 2], torch.ones(4, 3, 3), atol=1e-4)  # std of (0, 2, 0, 2) is 1
    assert torch.equal(y[:, :2], x)


def test_differentiable_augmentations():
    torch.manual_seed(0)
    x = torch.arange(2 * 16.0 * 16).view(2, 1, 16, 16).requires_grad_(True)
    t = translate(x)
    for i in range(2):  # each picture is the original shifted by at most 2 pixels, zero-filled
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.roll(x[i].detach(), (-dy, -dx), (1, 2))
                valid = torch.ones(16, 16, dtype=torch.bool)
                valid[max(0, 16 - dy):, :] = valid[:max(0, -dy), :] = False
                valid[:, max(0, 16 - dx):] = valid[:, :max(0, -dx)] = False
                if torch.equal(t[i].detach()[0][valid], shifted[0][valid]) and not t[i].detach()[0][~valid].any():
                    found = True
        assert found
    t.sum().backward()
    assert x.grad is not None and x.grad.sum() > 0
    c = cutout(torch.ones(64, 1, 16, 16))
    zeros = (c == 0).flatten(1).sum(1)
    assert zeros.max() == 64 and zeros.min() > 0  # an 8x8 square, clipped where it leaves the picture
    assert parse_policy(" translation, cutout ") == ("translation", "cutout") and parse_policy("") == ()
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        parse_policy("flip")


def test_lazy_regularisation_corrects_lr_and_betas_and_bad_settings_are_refused():
    from ganforge.api import build

    cfg = config_from_dict({"method": {"name": "stylegan", "lr": 0.002, "r1_every": 16, "pl_every": 4},
                            "data": {"source": "digits"},
                            "model": {"z_dim": 8, "g_width": 8, "d_width": 8, "mapping_layers": 1}})
    method = build(cfg, log=quiet)
    specs = method.optimizers()
    assert specs["D"].lr == pytest.approx(0.002 * 16 / 17) and specs["D"].betas == pytest.approx((0, 0.99 ** (16 / 17)))
    assert specs["G"].lr == pytest.approx(0.002 * 4 / 5) and specs["G"].betas == pytest.approx((0, 0.99 ** 0.8))
    assert [(p.name, p.every) for p in method.phases()] == [("D", 1), ("D_r1", 16), ("G", 1), ("G_pl", 4)]
    bad = config_from_dict({"method": {"name": "stylegan", "augment": "flip"}, "data": {"source": "digits"}})
    with pytest.raises(GanforgeError, match="method.augment: unknown augmentation 'flip'"):
        build(bad, log=quiet)
    odd = config_from_dict({"method": {"name": "stylegan"}, "data": {"source": "mnist"}})
    with pytest.raises(GanforgeError, match="28x28 .*set data.resolution to 32 or 64"):
        build(odd, log=quiet)


def test_the_stylegan_commands_on_a_tiny_run(tmp_path, capsys):
    import ganforge
    from ganforge.cli import main
    from ganforge.report.images import picture_path

    cfg = config_from_dict({
        "name": "tiny-style", "data": {"source": "digits"},
        "model": {"z_dim": 8, "w_dim": 8, "g_width": 8, "d_width": 8, "mapping_layers": 1},
        "method": {"name": "stylegan", "r1_every": 2, "pl_every": 2, "ema_halflife_kimg": 1},
        "train": {"steps": 6, "batch_size": 16, "log_every": 3, "sample_every": 0, "checkpoint_every": 0,
                  "health": False, "precision": "fp32"}})
    run = str(ganforge.train(cfg, tmp_path / "run", progress=False, log=quiet))
    from PIL import Image

    def size(name):
        with Image.open(picture_path(tmp_path / name)) as im:
            return im.size

    assert main(["sample", run, "-n", "4", "--psi", "0.5", "-o", str(tmp_path / "a.png")]) == 0
    assert main(["sample", run, "-n", "3", "--psi-sweep", "1,0.5,0", "-o", str(tmp_path / "sweep.png")]) == 0
    assert "3 seeds (rows) x psi 1, 0.5, 0 (columns)" in capsys.readouterr().out
    # 8-px pictures with 2-px gaps, the grid enlarged x4: 3 psi columns x 3 seed rows = (3 x 10 + 2) x 4 px
    assert size("sweep.png") == (128, 128)
    assert main(["style-mix", run, "--rows", "1,2", "--cols", "5-7", "--layers", "coarse",
                 "-o", str(tmp_path / "mix.png"), "--json"]) == 0
    mix = json.loads(capsys.readouterr().out)
    assert mix["rows"] == [1, 2] and mix["cols"] == [5, 6, 7] and mix["layers"] == [0, 0]  # 8-px G: coarse is 4 px
    assert main(["style-mix", run, "--layers", "fine", "-o", str(tmp_path / "fine.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == [1, 3]  # an 8-px G: inputs 1-3 act at 8 px
    assert main(["noise", run, "--seed", "3", "-o", str(tmp_path / "noise.png")]) == 0
    assert size("noise.png") == ((7 * 10 + 2) * 4, 12 * 4)  # one row: fixed, none, 4 draws, spread
    assert "fixed noise | no noise | 4 fresh noise draws" in capsys.readouterr().out
    assert main(["interpolate", run, "--from", "1", "--to", "2", "--steps", "5", "--space", "w",
                 "-o", str(tmp_path / "w.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["space"] == "w"
    from ganforge.api import load_run
    from ganforge.styles import interpolate_w

    loaded = load_run(run)
    path = interpolate_w(loaded, 1, 2, 5)
    assert torch.allclose(path[0], loaded.sample(1, seed=1)[0], atol=1e-5)  # the ends are the seeds' pictures
    assert torch.allclose(path[-1], loaded.sample(1, seed=2)[0], atol=1e-5)
    assert main(["evaluate", run, "-n", "64", "--metrics", "fid", "--psi", "0.5", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["generated"]["truncation"] == 0.5 and card["metrics"]["fid"]["value"] > 0
    for argv, message in ((["sample", run, "--truncation", "0.7"], "pass --psi 0.7"),
                          (["evaluate", run, "--truncation", "0.7"], "pass --psi instead"),
                          (["style-mix", run, "--layers", "middle"], "no middle layers"),
                          (["style-mix", run, "--layers", "2-9"], "style inputs 0-3"),
                          (["style-mix", run, "--rows", "a,b"], "give seeds as")):
        assert main(argv) != 0
        assert message in capsys.readouterr().err


def test_mixed_styles_change_what_the_layers_say(tmp_path):
    """Style mixing at the coarse inputs changes a picture differently from mixing at the fine
    ones: the grids' cells are the row picture where no input is copied."""
    from ganforge.styles import style_mix

    class FakeRun:  # a run-like object around an untrained 16-px generator
        def __init__(self):
            torch.manual_seed(0)
            self.config = config_from_dict({"method": {"name": "stylegan"}, "model": {"z_dim": 8}})
            self.device = "cpu"
            G = StyleGenerator(8, 8, 16, 1, widest=8, mapping_layers=1).eval()
            self.method = type("M", (), {"sampling_network": G})()

    run = FakeRun()
    coarse, picked = style_mix(run, [1, 2], [3], "0-5")
    assert list(picked) == [0, 1, 2, 3, 4, 5]  # every input from the column: each cell is the column picture
    assert torch.allclose(coarse[3], coarse[1], atol=1e-6) and torch.allclose(coarse[5], coarse[1], atol=1e-6)
    partial, _ = style_mix(run, [1, 2], [3], "coarse")
    assert not torch.allclose(partial[3], partial[2], atol=1e-4)  # row 1 changed by the column's coarse styles
    assert not torch.allclose(partial[3], partial[1], atol=1e-4)  # but is not the column picture either


def test_latent_directions_in_w(tmp_path, capsys):
    """A direction fitted on w (StyleGAN's intermediate space) and an edit along it; a seed's w gives
    the seed's own picture. MNIST at 8 px, scored by the MNIST classifier (resized to 28 px)."""
    import ganforge
    from ganforge.api import load_run
    from ganforge.cli import main
    from ganforge.latent import LatentSpace

    cfg = config_from_dict({
        "name": "tiny-style-mnist", "data": {"source": "mnist", "resolution": 8},
        "model": {"z_dim": 8, "w_dim": 8, "g_width": 8, "d_width": 8, "mapping_layers": 1},
        "method": {"name": "stylegan", "r1_every": 2, "pl_every": 2, "ema_halflife_kimg": 1},
        "train": {"steps": 4, "batch_size": 16, "log_every": 2, "sample_every": 0, "checkpoint_every": 0,
                  "health": False, "precision": "fp32"}})
    run = str(ganforge.train(cfg, tmp_path / "run", progress=False, log=quiet))
    loaded = load_run(run)
    w_space = LatentSpace(loaded, "w")
    assert torch.allclose(w_space.generate(w_space.draw(1, 4)), loaded.sample(1, seed=4), atol=1e-5)
    assert main(["directions", run, "--attribute", "3", "--space", "w", "-n", "200", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "run" / "directions" / "class-3-w.json").read_text())
    assert record["space"] == saved["space"] == "w" and len(saved["vector"]) == 8 and saved["unit"] > 0
    # the unit is the spread of the population's w along the direction
    d = torch.tensor(saved["vector"], dtype=torch.float64)
    assert abs((w_space.draw(200, 0).double() @ d).std().item() - saved["unit"]) < 1e-4
    assert main(["edit", run, "--direction", "class-3-w", "--amount", "-2:2:5", "-o", str(tmp_path / "e.png"),
                 "--json"]) == 0
    edited = json.loads(capsys.readouterr().out)
    assert edited["space"] == "w" and len(edited["strip_target_prob"]) == 5
    assert all(0 <= p <= 1 for p in edited["strip_target_prob"])
