"""Super-resolution: the downscaling, the luma protocol, the networks, seamless tiling, SRGAN's
start from an SRResNet run, `ganforge upscale` and the evaluation card, and a short real
training run that must beat bicubic interpolation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.api import load_run
from ganforge.config import config_from_dict
from ganforge.data.resample import bicubic_downscale, centre_crop_to_multiple, quantise
from ganforge.errors import GanforgeError
from ganforge.losses.perceptual import feature_distance
from ganforge.models.srresnet import RandomFeatureCNN, SRDiscriminator, SRResNet
from ganforge.upscaling import fid_crops, luma, natural_photos, sr_scores, upscale_tiled


def quiet(*_):
    pass


def smooth_picture(h=48, w=40, seed=0) -> torch.Tensor:
    """A (1, 3, h, w) picture in [-1, 1] with edges and gradients, rounded to 8 bits."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, h // 8, w // 8, generator=g) * 2 - 1
    big = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    big[..., h // 3:h // 2, :] = 0.9  # a hard edge
    return quantise(big)


def test_bicubic_downscale_is_pils_bicubic_resize():
    hr = smooth_picture()
    ours = ((bicubic_downscale(hr, 4)[0] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    arr = ((hr[0] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    pil = np.asarray(Image.fromarray(arr).resize((10, 12), Image.Resampling.BICUBIC))
    assert ours.shape == pil.shape == (12, 10, 3)
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 1  # rounding only
    with pytest.raises(ValueError, match="does not divide"):
        bicubic_downscale(hr[..., :47, :], 4)


def test_luma_is_bt601_as_matlab_rgb2ycbcr():
    white, black = torch.ones(1, 3, 1, 1), -torch.ones(1, 3, 1, 1)
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
    to_unit = lambda y: float((y + 1) / 2)  # noqa: E731
    assert to_unit(luma(white)) == pytest.approx(235 / 255)
    assert to_unit(luma(black)) == pytest.approx(16 / 255)
    assert to_unit(luma(red)) == pytest.approx((16 + 65.481) / 255)
    grey = torch.rand(2, 1, 4, 4)
    assert torch.equal(luma(grey), grey)


def test_sr_scores_crop_the_border_and_read_8_bit_outputs():
    ref = quantise(smooth_picture(24, 24) * 0.8)
    out = ref.clone()
    out[..., :4, :] = -ref[..., :4, :]  # damage only a 4-px border
    scores = sr_scores(out, ref, border=4)
    assert scores["psnr_y"]["n_infinite"] == 1 and scores["ssim_rgb"]["mean"] == pytest.approx(1.0)
    # A uniform error of 2 levels in every channel: RGB PSNR = 20 log10(255 / 2); Y moves by
    # (65.481 + 128.553 + 24.966) / 255 x 2 levels of 255.
    shifted = ref + 4 / 255
    s = sr_scores(shifted, ref, border=4)
    assert s["psnr_rgb"]["mean"] == pytest.approx(20 * np.log10(255 / 2), abs=0.01)
    assert s["psnr_y"]["mean"] == pytest.approx(20 * np.log10(255 / (2 * 219 / 255)), abs=0.05)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_srresnet_upscales_by_its_scale_and_the_discriminator_reads_its_crop(scale):
    g = SRResNet(3, scale, width=8, blocks=2)
    assert g(torch.zeros(2, 3, 5, 7)).shape == (2, 3, 5 * scale, 7 * scale)
    d = SRDiscriminator(3, side=12 * scale, width=4, layers=4)
    assert d(torch.zeros(3, 3, 12 * scale, 12 * scale)).shape == (3,)


def test_receptive_radius_bounds_what_one_input_pixel_reaches():
    """Tiling is exact only if no input pixel reaches outputs beyond the radius: poke one pixel
    and find how far the output moves (and that the radius is not far beyond it)."""
    torch.manual_seed(0)
    g = SRResNet(3, 4, width=8, blocks=3).eval()
    x = torch.zeros(1, 3, 41, 41)
    poked = x.clone()
    poked[..., 20, 20] = 1.0
    with torch.no_grad():
        moved = (g(poked) - g(x)).abs().amax(1)[0] > 0
    rows = moved.any(1).nonzero().flatten()
    reach = max(20 * 4 - int(rows.min()), int(rows.max()) - (20 * 4 + 3)) / 4  # in input pixels
    assert reach <= g.receptive_radius <= reach + 2


def test_tiled_upscaling_equals_one_pass():
    from ganforge.methods.srgan import SRResNetMethod

    cfg = config_from_dict({"method": {"name": "srresnet", "scale": 2, "crop": 8},
                            "model": {"g_width": 8, "res_blocks": 2}, "data": {"source": "digits"}})
    from ganforge.data import DataSpec

    torch.manual_seed(1)
    method = SRResNetMethod(cfg, DataSpec((3, 8, 8), True, 10))
    picture = smooth_picture(37, 29)
    whole = method.upscale(picture)
    for tile in (5, 16):
        assert torch.allclose(upscale_tiled(method, picture, tile), whole, atol=1e-5)
    with pytest.raises(GanforgeError, match="--tile must be at least 1"):
        upscale_tiled(method, picture, 0)


def test_feature_distance_is_relative_and_zero_for_equal_pictures():
    net = RandomFeatureCNN(3)
    a = smooth_picture(32, 32)
    assert float(feature_distance(net(a), net(a))) == 0.0
    assert float(feature_distance(net(torch.zeros_like(a)), net(a))) == pytest.approx(1.0)
    assert float(feature_distance([2 * t for t in net(a)], [2 * t for t in net(a * 0.5)])) == pytest.approx(
        float(feature_distance(net(a), net(a * 0.5))), rel=1e-5)
    again = RandomFeatureCNN(3)  # rebuilt from its seed: the same feature space every time
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), again.parameters(), strict=True))


def test_fid_crops_and_mod_crop():
    pictures = torch.zeros(2, 3, 130, 200)
    assert fid_crops(pictures).shape == (2 * 2 * 3, 3, 64, 64)
    assert centre_crop_to_multiple(torch.zeros(1, 3, 130, 203), 4).shape[-2:] == (128, 200)


def test_natural_photos_come_from_scikit_image_without_download():
    names, pictures = natural_photos()
    assert {"astronaut", "chelsea", "coffee", "rocket"} <= set(names)
    assert all(p.shape[:2] == (1, 3) and p.min() >= -1 and p.max() <= 1 for p in pictures)


# -- training, SRGAN's start, the commands -----------------------------------------------------

TINY = {"data": {"source": "icons-oxygen", "resolution": 32},
        "model": {"g_width": 16, "res_blocks": 2, "d_width": 8, "d_layers": 2, "bicubic_skip": True},
        "train": {"batch_size": 16, "log_every": 20, "sample_every": 0, "checkpoint_every": 200, "health": False,
                  "precision": "fp32"}}


def tiny_config(method: dict, steps: int, name: str, g_width: int = 16):
    tree = json.loads(json.dumps(TINY))
    tree["model"]["g_width"] = g_width
    tree["name"] = name
    tree["method"] = {"scale": 4, "crop": 32, "lr": 1e-3, **method}
    tree["train"]["steps"] = steps
    return config_from_dict(tree)


@pytest.fixture(scope="module")
def srresnet_run(tmp_path_factory):
    """A small SRResNet (with the bicubic skip) trained for 600 steps on 32-px icons (about 10 s)."""
    out = tmp_path_factory.mktemp("sr") / "srresnet"
    return ganforge.train(tiny_config({"name": "srresnet"}, 600, "tiny-srresnet"), out, progress=False, log=quiet)


def test_a_short_srresnet_run_beats_bicubic_on_held_out_icons(srresnet_run):
    from ganforge.upscaling import evaluate_upscaling

    card = evaluate_upscaling(load_run(srresnet_run), n=60, photos=False, log=quiet)
    (held,) = card["test_sets"].values()
    assert held["pictures"] == 60
    # 600 steps of a two-block model: +0.8 dB over bicubic on the luma channel here
    print(f"tiny SRResNet: {held['psnr_y_gain_db']:+.2f} dB over bicubic")
    assert held["psnr_y_gain_db"] > 0.5, held
    assert held["model"]["ssim_y"]["mean"] > held["bicubic"]["ssim_y"]["mean"]
    assert held["model"]["fid"]["value"] < held["bicubic"]["fid"]["value"]
    assert "rgb2ycbcr" in card["protocol"] and card["scale"] == 4


def test_srgan_starts_from_the_srresnet_run(srresnet_run, tmp_path, monkeypatch):
    from ganforge.methods.srgan import find_init_run

    cfg = tiny_config({"name": "srgan", "init_run": str(srresnet_run)}, 2, "tiny-srgan")
    lines = []
    run = ganforge.train(cfg, tmp_path / "srgan", progress=False, log=lines.append)
    assert any("G starts from" in line for line in lines)
    sr, gan = load_run(srresnet_run), load_run(run)
    # two steps at lr 1e-3 move the weights only a little from where SRResNet left them
    diff = [float((a - b).detach().abs().max()) for a, b in zip(sr.method.models["G"].parameters(),
                                                         gan.method.models["G"].parameters(), strict=True)]
    assert max(diff) < 0.05
    # A preset name finds the newest finished run of it under runs/.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    srresnet_run.rename(tmp_path / "runs" / "00007-tiny-srresnet")
    try:
        assert find_init_run("tiny-srresnet").resolve() == tmp_path / "runs" / "00007-tiny-srresnet"
        with pytest.raises(GanforgeError, match="no finished run of preset srresnet-icons-x4 under runs/; train one"):
            find_init_run("srresnet-icons-x4")
        other = tiny_config({"name": "srgan", "init_run": "tiny-srresnet"}, 2, "x", g_width=8)
        with pytest.raises(GanforgeError, match="another generator \\(model.g_width differ"):
            ganforge.train(other, tmp_path / "bad", progress=False, log=quiet)
    finally:
        (tmp_path / "runs" / "00007-tiny-srresnet").rename(srresnet_run)


def test_upscale_command(srresnet_run, tmp_path, capsys):
    from ganforge.cli import main

    picture = tmp_path / "small.png"
    Image.fromarray(((smooth_picture(30, 22)[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()).save(picture)
    out = tmp_path / "big.png"
    assert main(["upscale", str(srresnet_run), str(picture), "-o", str(out), "--tile", "8"]) == 0
    assert Image.open(out).size == (88, 120)
    assert main(["upscale", str(srresnet_run), str(picture), "-o", str(tmp_path / "x2.png"), "--scale", "2"]) == 0
    assert Image.open(tmp_path / "x2.png").size == (44, 60)
    strip = tmp_path / "strip.png"
    assert main(["upscale", str(srresnet_run), str(picture), "-o", str(strip), "--compare", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["compare"] is True
    w, h = Image.open(strip).size
    assert h >= 28 and w >= 4 * 20  # four panels of the 20x28 mod-cropped original side by side
    folder = tmp_path / "many"
    assert main(["upscale", str(srresnet_run), str(picture), str(picture), "-o", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["small-2.png", "small.png"]
    for argv, message in ((["--scale", "8"], "--scale 8: this run upscales x4"),
                          (["-o", str(folder)], "is not empty"),
                          ([str(picture), "-o", str(tmp_path / "one.png")], "2 inputs cannot go to one file")):
        assert main(["upscale", str(srresnet_run), str(picture), *argv]) == 1
        assert message in capsys.readouterr().err


def test_evaluate_command_prints_the_trade_off_table(srresnet_run, capsys):
    from ganforge.cli import main

    assert main(["evaluate", str(srresnet_run), "-n", "20"]) == 0
    text = capsys.readouterr().out
    assert "bicubic" in text and "model" in text and "PSNR-Y" in text and "photos" in text
    # The card's example rows are saved, and the report shows the card in one line and the rows.
    from ganforge.report.html import write_report

    (picture,) = (srresnet_run / "eval").glob("upscaled_step_*.png")
    assert Image.open(picture).width > 4 * 32
    page = write_report(srresnet_run).read_text()
    assert "icons-oxygen test (20): PSNR-Y" in page and "(bicubic -&gt; model)" in page
    assert "held-out pictures: nearest | bicubic | model | original, at step 600" in page


@pytest.mark.parametrize("method, data, message", [
    ({"crop": 50}, {"source": "icons-oxygen", "resolution": 64}, "method.crop=50 is not a multiple of method.scale=4"),
    ({"crop": 96}, {"source": "icons-oxygen", "resolution": 32}, "method.crop=96 is larger than the 32-px pictures"),
    ({"scale": 5}, {"source": "digits"}, "method.scale must be one of 2, 3, 4"),
    ({"name": "srgan", "content": "emoji-convnet", "scale": 2, "crop": 8}, {"source": "digits"},
     "emoji-convnet reads colour pictures; use random-cnn or mse"),
    ({"crop": 8}, {"source": "toy-ring"}, "method srresnet upscales pictures; toy-ring holds points"),
])
def test_bad_super_resolution_settings_get_one_line(method, data, message):
    from ganforge.api import build

    with pytest.raises(GanforgeError) as err:
        build(config_from_dict({"method": {"name": "srresnet", **method}, "data": data}), log=quiet)
    assert message in str(err.value) and "\n" not in str(err.value)
