"""Paired translation: the tasks built from emoji, the metrics by hand and against scikit-image,
and the pix2pix networks' shapes and receptive field."""

import math

import numpy as np
import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import load_dataset
from ganforge.data.paired import edge_map, luma
from ganforge.metrics.paired import l1, psnr, ssim
from ganforge.models.unet import PatchDiscriminator, UNetGenerator, receptive_field


def quiet(*_):
    pass


def test_ssim_matches_scikit_image_and_psnr_l1_by_hand():
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    output = (target + 0.3 * torch.randn(3, 3, 32, 32, generator=g)).clamp(-1, 1)
    ours = ssim(output, target)
    for i in range(3):
        ref = structural_similarity(((output[i] + 1) / 2).permute(1, 2, 0).double().numpy(),
                                    ((target[i] + 1) / 2).permute(1, 2, 0).double().numpy(), channel_axis=2,
                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
        assert float(ours[i]) == pytest.approx(ref, abs=1e-9)
    assert torch.allclose(ssim(target, target), torch.ones(3, dtype=torch.float64))
    half = torch.zeros(1, 3, 8, 8)
    assert float(psnr(half, half + 0.2)) == pytest.approx(10 * math.log10(1 / 0.01))  # MSE (0.1)^2 in [0, 1]
    assert float(l1(half, half + 0.2)) == pytest.approx(0.2)


def test_edge_map_by_hand_and_luma():
    x = torch.full((1, 3, 12, 12), 255, dtype=torch.uint8)
    x[:, :, :, 6:] = 0                                   # white left half, black right half
    edges = edge_map(x)
    assert edges.shape == (1, 1, 12, 12) and set(edges.unique().tolist()) == {0, 255}
    assert (edges[0, 0, :, 5:7] == 0).all() and (edges[0, 0, :, :4] == 255).all() and (edges[0, 0, :, 8:] == 255).all()
    assert luma(torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1)).item() == 76  # 0.299 * 255


@pytest.mark.parametrize("task, in_channels", [("edges2emoji", 1), ("gray2emoji", 1), ("masked2emoji", 3),
                                               ("emoji-google2twitter", 3)])
def test_paired_tasks_keep_the_emoji_split_and_pair_the_same_emoji(task, in_channels):
    train = load_dataset(DataConfig(source=task, resolution=32), log=quiet)
    test = load_dataset(DataConfig(source=task, split="test", resolution=32), log=quiet)
    for ds in (train, test):
        assert ds.x.shape[1:] == (3, 32, 32) and ds.extra["input"].shape == (len(ds), in_channels, 32, 32)
        assert ds.spec.condition_shape == (in_channels, 32, 32)
    assert not set(train.extra["code"].tolist()) & set(test.extra["code"].tolist())
    if task == "gray2emoji":
        # luma at 64 px, then resized like the target: the same grey up to rounding
        assert int((test.extra["input"].int() - luma(test.x).int()).abs().max()) <= 2


def test_unet_and_patchgan_shapes_and_receptive_field():
    assert [receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]
    for side in (16, 32, 64):
        G = UNetGenerator(1, 3, side, width=8)
        D = PatchDiscriminator(4, width=8, layers=2)
        a = torch.randn(2, 1, side, side)
        b = G(a)
        assert b.shape == (2, 3, side, side) and b.abs().max() <= 1
        assert D(torch.cat([a, b], 1)).shape[:2] == (2, 1)
    with pytest.raises(Exception, match="power-of-two"):
        UNetGenerator(3, 3, 48)


@pytest.fixture(scope="module")
def tiny_pix2pix(tmp_path_factory):
    import ganforge
    from ganforge.config import load_config

    cfg = load_config("pix2pix-edges2emoji", ["data.resolution=32", "train.steps=6", "train.batch_size=8",
                                              "model.g_width=8", "model.d_width=8", "train.sample_every=3"])
    return ganforge.train(cfg, tmp_path_factory.mktemp("p2p") / "run", progress=False, log=quiet)


def test_pix2pix_run_is_evaluated_on_held_out_pairs(tiny_pix2pix):
    from PIL import Image

    import ganforge
    from ganforge.report.html import write_report

    card = ganforge.evaluate(tiny_pix2pix, n=40, log=quiet)
    picture = tiny_pix2pix / "eval" / card["examples"]["path"]
    assert Image.open(picture).size == (2 * (3 * 34 + 2), 2 * (8 * 34 + 2))  # 8 rows of input | output | target
    pairs = card["examples"]["pairs"]
    assert len(pairs) == 8 and pairs == sorted(set(pairs))  # evenly spaced among the 40 scored
    page = write_report(tiny_pix2pix).read_text()
    assert "id='translations'" in page and "in three rows: the inputs, G&#x27;s translations" in page
    assert "translation: [l1 " in page and "(40 held-out pairs)" in page
    m = card["metrics"]
    assert card["reference"] == {"dataset": "edges2emoji", "split": "test", "n": 40}
    assert set(m) == {"translation", "fid"}  # edges (1 channel) -> emoji (3): no identity baseline
    assert 0 < m["translation"]["ssim"]["mean"] < 1 and m["translation"]["psnr"]["n"] == 40
    assert m["fid"]["value"] > 0 and card["extractor"]["name"] == "emoji-convnet"
    assert "SSIM (11x11 Gaussian window" in card["protocol"]


def test_translate_command_rows_and_refusals(tiny_pix2pix, tmp_path, capsys):
    import json

    from PIL import Image

    from ganforge.cli import main

    out = tmp_path / "held_out.png"
    assert main(["translate", str(tiny_pix2pix), "--test", "3", "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["columns"] == ["input", "output", "target"]
    width, height = Image.open(out).size
    assert width == height and width % (3 * 32 + 4 * 2) == 0  # 3 rows x 3 columns with 2 px gaps (maybe upscaled)
    # the U-Net is fully convolutional: any multiple of its 32-px stride is translated as it is
    square, wide, odd = tmp_path / "in" / "square.png", tmp_path / "in" / "wide.png", tmp_path / "odd.png"
    square.parent.mkdir()
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(square)
    Image.fromarray(np.full((32, 64, 4), 255, np.uint8), "RGBA").save(wide)  # RGBA: converted as training does
    Image.fromarray(np.full((40, 30), 255, np.uint8)).save(odd)
    folder = tmp_path / "translated"
    assert main(["translate", str(tiny_pix2pix), str(square.parent), "-o", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["square.png", "wide.png"]
    assert Image.open(folder / "wide.png").size == (64, 32) and Image.open(folder / "square.png").mode == "RGB"
    assert main(["translate", str(tiny_pix2pix), str(square), "-o", str(folder)]) == 1
    assert "is not empty" in capsys.readouterr().err  # nothing overwritten
    assert main(["translate", str(tiny_pix2pix), str(square.parent), "-o", str(tmp_path / "t.png")]) == 1
    assert "one picture of rows needs one size: write one file per input with -o FOLDER" in capsys.readouterr().err
    assert main(["translate", str(tiny_pix2pix), str(odd), "-o", str(tmp_path / "t.png")]) == 1
    err = capsys.readouterr().err
    assert "is 30x40; this model translates pictures whose sides are multiples of 32 px" in err
    assert "--resize" in err and err.count("\n") == 1
    assert main(["translate", str(tiny_pix2pix), str(odd), "--resize", "-o", str(tmp_path / "t.png")]) == 0
    assert Image.open(tmp_path / "t.png").size == (2 * (2 * 34 + 2), 2 * (34 + 2))  # input | output, 2x enlarged
    capsys.readouterr()
    assert main(["sample", str(tiny_pix2pix)]) == 1
    assert "translates images rather than sampling them" in capsys.readouterr().err


def _picture(path, colour, size=(16, 16)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), colour, np.uint8)).save(path)


def test_paired_folder_in_both_layouts_with_partners_checked(tmp_path):
    from ganforge.errors import GanforgeError

    ab = tmp_path / "ab"
    for i in range(3):
        _picture(ab / "train" / "A" / f"{i}.png", 10 * i)
        _picture(ab / "train" / "B" / f"{i}.jpg", 200)
    _picture(ab / "train" / "A" / "lonely.png", 0)
    with pytest.raises(GanforgeError, match=r"lonely\.\* has no partner in B/ \(1 unpaired\).*skip_unpaired=true"):
        load_dataset(DataConfig(source="paired", path=str(ab)), log=quiet)
    notes = []
    ds = load_dataset(DataConfig(source="paired", path=str(ab), skip_unpaired=True), log=notes.append)
    assert len(ds) == 3 and ds.spec.condition_shape == (3, 16, 16) and ds.x.shape == (3, 3, 16, 16)
    assert [int(v) for v in ds.extra["input"][:, 0, 0, 0]] == [0, 10, 20] and int(ds.x.min()) >= 199
    assert any("skipped 1 picture(s) without a partner" in m for m in notes)

    side = tmp_path / "side"
    from PIL import Image

    for i in range(2):
        pic = np.zeros((16, 32, 3), np.uint8)
        pic[:, 16:] = 255                                 # input black on the left, target white on the right
        side.mkdir(exist_ok=True)
        Image.fromarray(pic).save(side / f"{i}.png")
    ds = load_dataset(DataConfig(source="paired", path=str(side), resolution=16), log=quiet)
    assert int(ds.extra["input"].max()) == 0 and int(ds.x.min()) == 255
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(side / "square.png")
    with pytest.raises(GanforgeError, match=r"square.png is 16x16; a side-by-side pair is twice as wide"):
        load_dataset(DataConfig(source="paired", path=str(side), resolution=16), log=quiet)


def test_paired_folder_scales_small_pictures_up_with_a_note_and_refuses_tiny_ones(tmp_path):
    from ganforge.errors import GanforgeError

    for i, side in enumerate((32, 16)):
        _picture(tmp_path / "ab" / "A" / f"{i}.png", 0, (side, side))
        _picture(tmp_path / "ab" / "B" / f"{i}.png", 255, (side, side))
    notes = []
    ds = load_dataset(DataConfig(source="paired", path=str(tmp_path / "ab"), resolution=32), log=notes.append)
    assert ds.x.shape == (2, 3, 32, 32) and ds.extra["input"].shape == (2, 3, 32, 32)
    assert "note: smaller than data.resolution=32, scaled up (blurrier than the rest): 2 picture(s)" in notes
    with pytest.raises(GanforgeError, match=r"1\.png is only 16x16, too small to scale to 128 px.*64 or less"):
        load_dataset(DataConfig(source="paired", path=str(tmp_path / "ab"), resolution=128), log=quiet)


def test_pix2pix_trains_on_a_users_paired_folder(tmp_path):
    import ganforge
    from ganforge.config import load_config

    for i in range(8):
        _picture(tmp_path / "pairs" / "A" / f"{i}.png", 20 * i, (32, 32))
        _picture(tmp_path / "pairs" / "B" / f"{i}.png", 255 - 20 * i, (32, 32))
    cfg = load_config("pix2pix-edges2emoji", ["data.source=paired", f"data.path={tmp_path / 'pairs'}",
                                              "data.resolution=32", "train.steps=2", "train.batch_size=4",
                                              "model.g_width=4", "model.d_width=4", "train.sample_every=0"])
    run = ganforge.load_run(ganforge.train(cfg, tmp_path / "run", progress=False, log=quiet))
    assert run.method.translate(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)
