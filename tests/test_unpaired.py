"""Unpaired translation (CycleGAN): the two-domain data, the history pool by hand, the networks
against the reference implementation's sizes, and a tiny run through evaluate, translate and the
report."""

import json

import numpy as np
import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import Batch, load_dataset
from ganforge.errors import GanforgeError
from ganforge.methods.cyclegan import CycleGANOptions, ImagePool, discriminator_loss, generator_loss, r1_loss
from ganforge.models.resnet import ResnetGenerator
from ganforge.models.unet import PatchDiscriminator


def quiet(*_):
    pass


def test_networks_have_the_reference_implementations_sizes():
    # The reference CycleGAN prints 11.378 M parameters for its ResNet-9 generator (ngf 64) and
    # 2.765 M for the 70x70 PatchGAN (ndf 64, 3 layers), both with instance norm.
    G = ResnetGenerator(3, 3, width=64, blocks=9, norm="instance")
    D = PatchDiscriminator(3, width=64, layers=3, norm="instance")
    assert sum(p.numel() for p in G.parameters()) == 11_378_179
    assert sum(p.numel() for p in D.parameters()) == 2_764_737
    resized = ResnetGenerator(3, 3, width=64, blocks=9, norm="instance", upsample="resize")
    assert sum(p.numel() for p in resized.parameters()) == 11_378_179  # the same taps, placed without overlap
    for upsample in ("transpose", "resize"):
        small = ResnetGenerator(1, 3, width=8, blocks=2, upsample=upsample)
        y = small(torch.randn(2, 1, 32, 48))  # fully convolutional: any sides divisible by 4
        assert y.shape == (2, 3, 32, 48) and y.abs().max() <= 1
    for halvings in (0, 1, 3):  # model.g_downsamplings: the residual blocks run at side / 2 ** halvings
        G = ResnetGenerator(3, 3, width=4, blocks=1, downsamplings=halvings)
        block = next(m for m in G.modules() if m.__class__.__name__ == "ResidualBlock")
        seen: list[torch.Size] = []
        block.register_forward_hook(lambda _m, _i, out, seen=seen: seen.append(out.shape))
        assert G(torch.randn(1, 3, 16, 24)).shape == (1, 3, 16, 24)
        assert seen == [(1, 4 * 2 ** halvings, 16 // 2 ** halvings, 24 // 2 ** halvings)]


def test_input_skip_starts_as_the_identity_and_clamps_only_in_eval_mode():
    G = ResnetGenerator(3, 3, width=8, blocks=2, input_skip=True)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(G(x), x)  # f's last conv starts at zero
    with torch.no_grad():
        G.net[-1].bias.fill_(0.5)  # f = 0.5 everywhere
    assert G(x).max() > 1 and torch.allclose(G(x), x + 0.5)  # linear while training: D sees what leaves [-1, 1]
    G.eval()
    assert torch.allclose(G(x), (x + 0.5).clamp(-1, 1))
    with pytest.raises(ValueError, match="channels differ"):
        ResnetGenerator(1, 3, width=8, blocks=2, input_skip=True)


def test_image_pool_by_hand():
    pool = ImagePool(3)
    first = torch.arange(2.0).view(2, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and pool.images.flatten().tolist() == [0.0, 1.0]
    torch.manual_seed(0)
    second = torch.tensor([2.0, 3.0, 4.0]).view(3, 1, 1, 1)
    out = pool.query(second)
    # 2 fills the last slot and comes back as it is; 3 and 4 each come back, or swap with a stored fake
    assert out[0].item() == 2.0 and len(pool.images) == 3
    # Nothing lost or duplicated: 2 is shown and kept; 3 and 4 are each shown, or kept while an older one is shown.
    after = sorted(out.flatten().tolist() + pool.images.flatten().tolist())
    assert after == [0.0, 1.0, 2.0, 2.0, 3.0, 4.0]
    # Once full, about half of the fakes shown are older ones (seeded: 1,000 single fakes).
    big = ImagePool(50)
    shown = [big.query(torch.full((1, 1, 1, 1), float(i))).item() for i in range(1050)]
    older = sum(v != i for i, v in enumerate(shown[50:], start=50))
    assert shown[:50] == list(range(50)) and 450 < older < 550
    assert torch.equal(ImagePool(0).query(second), second)  # pool_size 0: no history


def test_cycle_noise_jams_only_the_way_back():
    # Generators that copy their input and a D that says 1 everywhere: the adversarial and identity
    # terms are 0, and the cycle's way back returns the noise itself, so each cycle term is
    # E|std * N(0, 1)| = std * sqrt(2 / pi) (0.3 * 0.79788 = 0.23936).
    copy = torch.nn.Identity()
    models = {"G_AB": copy, "G_BA": copy, "D_A": lambda x: torch.ones(len(x), 1, 2, 2),
              "D_B": lambda x: torch.ones(len(x), 1, 2, 2)}
    a, b = torch.rand(64, 3, 32, 32) * 2 - 1, torch.rand(64, 3, 32, 32) * 2 - 1
    torch.manual_seed(0)
    out = generator_loss(models, Batch({"x": b, "input": a}), options=CycleGANOptions(cycle_noise=0.3),
                         identity=True)
    assert out["gan_AB"] == 0 and out["gan_BA"] == 0 and out["idt_A"] == 0 and out["idt_B"] == 0
    for term in ("cycle_A", "cycle_B"):
        assert out[term].item() == pytest.approx(0.3 * (2 / np.pi) ** 0.5, rel=0.01)
    assert torch.equal(out["fake_b"], a) and torch.equal(out["fake_a"], b)  # D is shown the clean translations
    clean = generator_loss(models, Batch({"x": b, "input": a}), options=CycleGANOptions(), identity=True)
    assert clean["cycle_A"] == 0 and clean["loss"] == 0  # the paper's default: no noise


def test_r1_of_a_patchgan_by_hand():
    # Each of D's 2 x 2 decisions is c times the sum of its quadrant over the 3 channels, so the
    # gradient of all decisions' sum is c at every one of the 3 x 8 x 8 values: ||grad||^2 =
    # c^2 * 192, per decision (P = 4) c^2 * 48 = 12 for c = 0.5; the loss is gamma/2 (12 + 12).
    def quadrant_sums(x):
        return 0.5 * torch.nn.functional.avg_pool2d(x.sum(1, keepdim=True), 4) * 16

    models = {"D_A": quadrant_sums, "D_B": quadrant_sums}
    batch = Batch({"x": torch.randn(5, 3, 8, 8), "input": torch.randn(5, 3, 8, 8)})
    out = r1_loss(models, batch, r1_gamma=0.1)
    assert out["r1_A"].item() == pytest.approx(12.0) and out["r1_B"].item() == pytest.approx(12.0)
    assert out["loss"].item() == pytest.approx(0.05 * 24)


def test_augmentation_reaches_both_discriminators_on_real_and_fake_alike():
    # With cutout, every picture either D is shown in its step (real, and fake from the pool) and
    # every translation G is judged on has a square of zeros; without a policy none has.
    seen = []

    def recording_d(x):
        seen.append(x.detach())
        return torch.zeros(len(x), 1, 2, 2)

    models = {"G_AB": torch.nn.Identity(), "G_BA": torch.nn.Identity(), "D_A": recording_d, "D_B": recording_d}
    ones = Batch({"x": torch.ones(4, 3, 16, 16), "input": torch.ones(4, 3, 16, 16)})
    pools = {"A": ImagePool(0), "B": ImagePool(0)}
    for policy, blanked in (((), False), (("cutout",), True)):
        seen.clear()
        carry = generator_loss(models, ones, options=CycleGANOptions(), identity=True, policy=policy)
        discriminator_loss(models, ones, carry, options=CycleGANOptions(), pools=pools, policy=policy)
        assert len(seen) == 6  # G: D_B(fake_b), D_A(fake_a); D: real and fake for each domain
        for x in seen:
            assert bool((x == 0).flatten(1).any(1).all()) is blanked


def test_emoji_task_trains_on_disjoint_emoji_and_tests_on_true_pairs():
    from ganforge.data.colour_sets import source_meta
    from ganforge.data.unpaired import base_of

    train = load_dataset(DataConfig(source="emoji-google-twitter"), log=quiet)
    keys = source_meta("emoji-google")["codes"]
    n = train.info["domains"]
    assert train.info["unpaired"] and 1000 < n["A"] < 2500 and 1000 < n["B"] < 2500
    assert len(train) == max(n["A"], n["B"]) and train.spec.unpaired
    same = load_dataset(DataConfig(source="emoji-google<->twitter"), log=quiet)  # the spelling
    assert torch.equal(same.x, train.x)
    # No emoji (by base, skin tones included) is drawn in both domains.
    bases_a = {base_of(keys[int(c)]) for c in train.extra["input_code"][:n["A"]]}
    bases_b = {base_of(keys[int(c)]) for c in train.extra["code"][:n["B"]]}
    assert len(set(train.extra["input_code"].tolist())) == n["A"] and len(set(train.extra["code"].tolist())) == n["B"]
    assert bases_a and bases_b and not bases_a & bases_b
    test = load_dataset(DataConfig(source="emoji-google-twitter", split="test"), log=quiet)
    pairs = load_dataset(DataConfig(source="emoji-google2twitter", split="test"), log=quiet)
    assert test.info["paired_test"] and torch.equal(test.x, pairs.x) and torch.equal(test.extra["input"],
                                                                                     pairs.extra["input"])


def _pictures(folder, count, colour, size=16):
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.full((size, size, 3), colour, np.uint8)).save(folder / f"{i}.png")


def test_users_unpaired_folders_in_cyclegans_layout(tmp_path):
    _pictures(tmp_path / "trainA", 3, 0)
    _pictures(tmp_path / "trainB", 5, 255)
    ds = load_dataset(DataConfig(source="unpaired", path=str(tmp_path)), log=quiet)
    assert len(ds) == 5 and ds.info["domains"] == {"A": 3, "B": 5}
    assert int(ds.extra["input"].max()) == 0 and int(ds.x.min()) == 255 and ds.spec.condition_shape == (3, 16, 16)
    with pytest.raises(GanforgeError, match="has no testA/ and testB/"):
        load_dataset(DataConfig(source="unpaired", path=str(tmp_path), split="test"), log=quiet)
    _pictures(tmp_path / "other" / "A", 2, 0, size=16)
    _pictures(tmp_path / "other" / "B", 2, 0, size=32)
    with pytest.raises(GanforgeError, match="domain A's pictures are 16 px and domain B's 32 px; set data.resolution"):
        load_dataset(DataConfig(source="unpaired", path=str(tmp_path / "other")), log=quiet)
    assert load_dataset(DataConfig(source="unpaired", path=str(tmp_path / "other"), resolution=32), log=quiet).x.shape \
        == (2, 3, 32, 32)


def test_pix2pix_refuses_unpaired_data():
    import ganforge
    from ganforge.config import load_config

    cfg = load_config("pix2pix-google2twitter", ["data.source=emoji-google-twitter", "data.resolution=16",
                                                 "train.steps=1"])
    with pytest.raises(GanforgeError, match="two unpaired collections, and pix2pix learns from pairs.*cyclegan"):
        ganforge.train(cfg, None, progress=False, log=quiet)


@pytest.fixture(scope="module")
def tiny_cyclegan(tmp_path_factory):
    import ganforge
    from ganforge.config import load_config

    cfg = load_config("cyclegan-emoji-32", ["data.resolution=16", "train.steps=4", "train.batch_size=4",
                                            "model.g_width=4", "model.d_width=4", "model.res_blocks=1",
                                            "model.d_layers=1", "train.sample_every=2"])
    return ganforge.train(cfg, tmp_path_factory.mktemp("cg") / "run", progress=False, log=quiet)


def test_cyclegan_is_evaluated_both_ways_against_true_pairs_and_identity(tiny_cyclegan):
    from PIL import Image

    import ganforge
    from ganforge.report.html import write_report

    card = ganforge.evaluate(tiny_cyclegan, n=30, log=quiet)
    m = card["metrics"]
    assert set(m) == {"a2b", "b2a"}
    for d in m.values():
        assert set(d) == {"translation", "identity", "cycle", "fid", "fid_identity", "spread"}
        assert 0 <= d["spread"] < 5
        assert d["translation"]["l1"]["n"] == 30 and 0 < d["cycle"]["l1"]["mean"] < 2
        assert d["fid"]["value"] > 0 and d["fid_identity"]["value"] > 0
    # The identity is the same pictures both ways: its paired scores are symmetric.
    assert m["a2b"]["identity"]["l1"]["mean"] == pytest.approx(m["b2a"]["identity"]["l1"]["mean"])
    assert card["examples"]["columns"] == 4  # input | translation | reconstruction | target
    picture = tiny_cyclegan / "eval" / card["examples"]["path"]
    assert Image.open(picture).size == (4 * (4 * 18 + 2), 4 * (8 * 18 + 2))  # 16 px shown 4x, 2 px gaps
    page = write_report(tiny_cyclegan).read_text()
    assert "G_BA(G_AB(A))" in page and "id='translations'" in page


def test_translate_both_directions_with_reconstruction(tiny_cyclegan, tmp_path, capsys):
    from PIL import Image

    from ganforge.cli import main

    out = tmp_path / "b2a.png"
    assert main(["translate", str(tiny_cyclegan), "--test", "3", "--direction", "b2a", "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["columns"] == ["input", "output", "reconstruction", "target"] and result["direction"] == "b2a"
    picture = tmp_path / "x.png"
    Image.fromarray(np.full((20, 24, 3), 200, np.uint8)).save(picture)  # sides multiples of 4: read as it is
    assert main(["translate", str(tiny_cyclegan), str(picture), "-o", str(tmp_path / "rows.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["columns"] == ["input", "output", "reconstruction"]
    assert main(["sample", str(tiny_cyclegan)]) == 1
    assert "translates images rather than sampling them" in capsys.readouterr().err


def test_cyclegan_on_users_folders_is_scored_without_pairs(tmp_path):
    import ganforge
    from ganforge.config import load_config

    for split, count in (("train", 6), ("test", 3)):
        _pictures(tmp_path / "data" / f"{split}A", count, 40)
        _pictures(tmp_path / "data" / f"{split}B", count + 1, 220)
    cfg = load_config("cyclegan-emoji-32", ["data.source=unpaired", f"data.path={tmp_path / 'data'}",
                                            "data.resolution=16", "train.steps=2", "train.batch_size=2",
                                            "model.g_width=4", "model.d_width=4", "model.res_blocks=1",
                                            "model.d_layers=1", "train.sample_every=0"])
    run = ganforge.train(cfg, tmp_path / "run", progress=False, log=quiet)
    card = ganforge.evaluate(run, log=quiet)
    a2b, b2a = card["metrics"]["a2b"], card["metrics"]["b2a"]
    assert "translation" not in a2b and {"fid", "fid_identity", "spread", "cycle"} <= set(a2b)  # no true pairs
    assert a2b["fid"]["n_real"] == 4 and b2a["fid"]["n_real"] == 3  # the other domain's test pictures
    assert card["reference"]["n"] == 3 and card["reference"]["n_b2a"] == 4


def test_cyclegan_with_input_skip_and_spectral_norm_trains_resumes_and_translates(tmp_path):
    # The variants the README measures: generators that start as the identity, discriminators with
    # spectral normalisation and no norm layer, augmented D inputs and a lazy R1 (every 2nd step).
    # Four steps, then two more by resume; the saved config keeps the keys, so the run reloads
    # with the same networks.
    import ganforge
    from ganforge.api import resume
    from ganforge.config import load_config

    cfg = load_config("cyclegan-emoji-32", ["data.resolution=16", "train.steps=4", "train.batch_size=4",
                                            "model.g_width=4", "model.d_width=4", "model.res_blocks=1",
                                            "model.d_layers=1", "model.input_skip=true", "model.spectral_norm=true",
                                            "model.g_downsamplings=1", "method.cycle_noise=0.1",
                                            "method.augment=translation,cutout", "method.r1_gamma=1",
                                            "method.r1_every=2", "train.sample_every=0"])
    run = ganforge.load_run(ganforge.train(cfg, tmp_path / "run", progress=False, log=quiet))
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    r1_rows = [row for row in logged if "r1_A" in row]
    assert r1_rows and all(row["r1_A"] > 0 and row["r1_B"] > 0 for row in r1_rows)
    assert run.method.objective() == ("lsgan GAN x 2 + 10 x cycle (noise 0.1 on the way back) + 5 x identity, "
                                      "pool 50, R1 1 every 2, D sees translation+cutout")
    D = run.method.models["D_A"]
    assert any("parametrizations" in name or "weight_orig" in name for name, _ in D.named_parameters())
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in D.modules())
    assert run.config.model.input_skip and run.config.model.spectral_norm
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    y = run.method.translate(x)
    assert y.shape == x.shape and y.abs().max() <= 1  # clamped in eval mode
    assert run.method.side_multiple() == 2  # one halving: any even side translates (18 x 18 too)
    assert run.method.translate(torch.zeros(1, 3, 18, 18)).shape == (1, 3, 18, 18)
    resumed = ganforge.load_run(resume(tmp_path / "run", ["train.steps=6"], progress=False, log=quiet))
    assert resumed.step == 6 and resumed.config.model.spectral_norm and resumed.config.method.r1_gamma == 1
    bad = load_config("cyclegan-emoji-32", ["data.resolution=16", "train.steps=1", "method.augment=blur"])
    with pytest.raises(GanforgeError, match="method.augment: unknown augmentation 'blur'"):
        ganforge.train(bad, tmp_path / "bad", progress=False, log=quiet)
    assert not (tmp_path / "bad" / "checkpoints").exists()
    too_deep = load_config("cyclegan-emoji-32", ["data.resolution=20", "train.steps=1", "model.g_downsamplings=3"])
    with pytest.raises(GanforgeError, match="halves the picture 3 times .* multiples of 8, not 20 x 20"):
        ganforge.train(too_deep, tmp_path / "deep", progress=False, log=quiet)
    assert not (tmp_path / "deep" / "checkpoints").exists()
