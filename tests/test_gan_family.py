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


@pytest.mark.parametrize("cond_d", ["projection", "acgan"])
def test_conditional_gan_trains_samples_classes_and_checks_them(tmp_path, capsys, cond_d):
    from ganforge.cli import main

    cfg = load_config("cgan-mnist", ["data.source=digits", "data.resolution=28", "train.steps=6",
                                     "train.batch_size=32", "model.g_width=8", "model.d_width=8",
                                     f"model.cond_d={cond_d}", "train.sample_every=0"])
    run_dir = ganforge.train(cfg, tmp_path / "c", progress=False, log=lambda *_: None)
    run = ganforge.load_run(run_dir)
    assert run.n_classes == 10
    assert run.sample(5, seed=1, label=7).shape == (5, 1, 28, 28)
    # Same z, different class -> different image: the label reaches the generator.
    assert not torch.equal(run.sample(1, seed=1, label=3), run.sample(1, seed=1, label=7))
    assert torch.equal(run.sample(1, seed=1, label=3), run.sample(1, seed=1, label=3))
    if cond_d == "acgan":
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert rows[-1]["aux"] > 0
    # One row per class when no class is given.
    assert main(["sample", str(run_dir), "-n", "30", "-o", str(tmp_path / "g.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 30  # 10 rows x 3 columns
    for argv, message in ((["--class", "10"], "class 10 is out of range"),
                          (["--class", "-1"], "class -1 is out of range")):
        assert main(["sample", str(run_dir), *argv]) == 1
        assert message in capsys.readouterr().err


def test_class_on_unconditional_run_is_refused(tmp_path, capsys):
    from ganforge.cli import main

    cfg = load_config("toy-ring", TINY + ["train.steps=5"])
    run = ganforge.train(cfg, tmp_path / "u", progress=False, log=lambda *_: None)
    assert main(["sample", str(run), "--class", "3"]) == 1
    assert "is unconditional" in capsys.readouterr().err


def test_cgan_needs_labels(tmp_path):
    cfg = load_config("cgan-mnist", ["data.source=toy-mixture", "data.toy_means=[[0, 0]]", "data.toy_stds=[0.1]",
                                     "model.arch=mlp", "train.steps=1"])
    with pytest.raises(GanforgeError, match="needs labelled data with at least 2 classes"):
        ganforge.train(cfg, tmp_path / "x", progress=False, log=lambda *_: None)


def test_infogan_codes_find_the_modes_without_labels(tmp_path, capsys):
    """Four far-apart Gaussians, four codes, no labels: after 1,000 steps each code draws one mode
    (its points nearest that mean) and the codes cover all four (seed 1; by hand, seeds 0-2 gave
    purity 0.90 / 1.00 / 1.00 with 4 / 4 / 3 modes covered)."""
    from ganforge.cli import main
    from ganforge.metrics.distances import code_purity

    means = [[2, 2], [2, -2], [-2, 2], [-2, -2]]
    cfg = load_config("toy-ring", TINY + ["data.source=toy-mixture", f"data.toy_means={means}",
                                          "data.toy_stds=[0.2]", "method.name=infogan", "method.codes=4",
                                          "model.embed_dim=4", "train.steps=1000", "train.seed=1"])
    run_dir = ganforge.train(cfg, tmp_path / "i", progress=False, log=lambda *_: None)
    run = ganforge.load_run(run_dir)
    assert run.n_classes == 4 and not run.method.labels_are_classes
    points, codes = run.sample(400, seed=0), run.labels(400)
    nearest = torch.cdist(points, torch.tensor(means, dtype=torch.float)).argmin(1)
    purity = code_purity(nearest, codes, 4, 4)
    assert purity["value"] >= 0.95 and purity["classes_covered"] == 4
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["Q_acc"] >= 0.95 and 0 <= rows[-1]["info"] < 0.2  # Q reads the codes back
    assert main(["sample", str(run_dir), "--class", "4"]) == 1
    assert "code 4 is out of range: codes are 0..3" in capsys.readouterr().err


def test_infogan_trains_where_there_are_no_labels_and_refuses_packs(tmp_path):
    one_mode = ["data.source=toy-mixture", "data.toy_means=[[0, 0]]", "data.toy_stds=[0.1]", "method.name=infogan"]
    run = ganforge.train(load_config("toy-ring", TINY + one_mode + ["train.steps=3"]), tmp_path / "x",
                         progress=False, log=lambda *_: None)
    assert ganforge.load_run(run).method.critic() is not None  # D ignores the code: one surface to draw
    with pytest.raises(GanforgeError, match="method.pack does not combine with infogan"):
        ganforge.train(load_config("toy-ring", TINY + one_mode + ["method.pack=2"]), tmp_path / "p",
                       progress=False, log=lambda *_: None)


def test_infogan_noise_scale_shrinks_the_noise_inside_g(tmp_path):
    """method.noise_scale sigma: G(z, c) = base([sigma z, e_c]) while callers draw z ~ N(0, I),
    so a loaded run samples from the noise it was trained on; sigma = 1 is the paper's G."""
    one_mode = ["data.source=toy-mixture", "data.toy_means=[[0, 0]]", "data.toy_stds=[0.1]", "method.name=infogan"]
    run_dir = ganforge.train(load_config("toy-ring", TINY + one_mode + ["train.steps=2", "method.noise_scale=0.1"]),
                             tmp_path / "s", progress=False, log=lambda *_: None)
    G = ganforge.load_run(run_dir).method.models["G"]
    assert G.noise_scale == 0.1
    z, c = torch.randn(5, G.z_dim), torch.arange(5) % G.n_classes
    with torch.no_grad():
        scaled = G(z, c)
        G.noise_scale = 1.0
        assert torch.allclose(scaled, G(0.1 * z, c), atol=1e-6)
        assert not torch.allclose(scaled, G(z, c), atol=1e-3)
    with pytest.raises(GanforgeError, match="noise_scale"):
        load_config("toy-ring", TINY + one_mode + ["method.noise_scale=0"])


def test_infogan_noise_recovery_reads_z_back(tmp_path):
    """method.noise_weight beta_n: Q gets z_dim more outputs, both players add beta_n * the MSE of
    Q's noise estimate (logged as "noise"), with fresh fakes and with fakes handed on from the D
    step alike; after 300 steps on one blob Q reads z back far better than a guess of 0 would (1)."""
    one_mode = ["data.source=toy-mixture", "data.toy_means=[[0, 0]]", "data.toy_stds=[0.5]", "method.name=infogan",
                "model.z_dim=2", "method.codes=2", "model.embed_dim=2", "method.noise_weight=1", "train.steps=300",
                "train.log_every=50"]
    for reuse in ("false", "true"):
        run_dir = ganforge.train(load_config("toy-ring", TINY + one_mode + [f"method.reuse_fakes={reuse}"]),
                                 tmp_path / reuse, progress=False, log=lambda *_: None)
        D = ganforge.load_run(run_dir).method.models["D"]
        assert (D.n_codes, D.n_noise) == (2, 2) and D.q[-1].out_features == 4
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert rows[0]["noise"] > 0 and rows[-1]["noise"] < 0.5


def test_selfcond_conditions_on_clusters_found_without_labels(tmp_path, capsys):
    """Four far-apart Gaussians, 8 k-means clusters, no labels: G's label weights are the
    clusters' shares of the data, samples come in those proportions, and after 1,000 steps (with R1)
    every cluster draws inside one mode (the one its training points lie in) and every mode is
    drawn (by hand at seed 1: 99.9 % of samples in their cluster's mode; without R1 57.5 % at 600
    steps, 100 % at 1,500)."""
    from ganforge.cli import main
    from ganforge.data import load_dataset
    from ganforge.data.clusters import kmeans

    means = [[2, 2], [2, -2], [-2, 2], [-2, -2]]
    setup = TINY + ["data.source=toy-mixture", f"data.toy_means={means}", "data.toy_stds=[0.2]",
                    "method.name=selfcond", "method.clusters=8", "model.embed_dim=4", "train.seed=1",
                    "method.r1_gamma=0.1"]
    run_dir = ganforge.train(load_config("toy-ring", setup + ["train.steps=1000"]), tmp_path / "s", progress=False,
                             log=lambda *_: None)
    run = ganforge.load_run(run_dir)
    assert run.n_classes == 8 and not run.method.labels_are_classes
    data = load_dataset(run.method.cfg.data, log=lambda *_: None)
    points = data.x
    _, clusters = kmeans(points, 8, seed=1)  # what training found (seeded by train.seed)
    shares = torch.bincount(clusters, minlength=8).float() / len(clusters)
    assert torch.allclose(run.method.models["G"].label_weights, shares)
    labels = run.labels(1000)
    assert (torch.bincount(labels, minlength=8).float() / 1000 - shares).abs().max() <= 0.001
    mode_of_cluster = torch.cdist(torch.stack([points[clusters == k].mean(0) for k in range(8)]),
                                  torch.tensor(means, dtype=torch.float)).argmin(1)
    drawn = torch.cdist(run.sample(1000, seed=0), torch.tensor(means, dtype=torch.float)).argmin(1)
    assert (drawn == mode_of_cluster[labels]).float().mean() >= 0.95
    assert drawn.unique().numel() == 4
    preview, _ = run.method.preview_inputs(data, 0, 200)  # the 2-D plots show every cluster, not the first ten
    assert preview["y"].unique().numel() == 8
    assert main(["sample", str(run_dir), "--class", "8"]) == 1
    assert "cluster 8 is out of range: clusters are 0..7" in capsys.readouterr().err
    with pytest.raises(GanforgeError, match="method.clusters=900 needs at least 900 training samples"):
        ganforge.train(load_config("toy-ring", setup + ["method.clusters=900", "data.toy_points=100"]),
                       tmp_path / "few", progress=False, log=lambda *_: None)
    with pytest.raises(GanforgeError, match="method.pack does not combine with selfcond"):
        ganforge.train(load_config("toy-ring", setup + ["method.pack=2"]), tmp_path / "p", progress=False,
                       log=lambda *_: None)


def test_truncation_bounds_latents_and_is_seeded():
    from ganforge.methods.base import Method

    class Dummy(Method):
        z_dim = 64

    cfg = load_config("dcgan-mnist")
    z = Dummy(cfg, None).latents(500, torch.Generator().manual_seed(0), truncation=0.5)
    assert float(z.abs().max()) <= 0.5 and float(z.std()) < 0.35  # N(0,1) truncated at 0.5: std 0.28
    again = Dummy(cfg, None).latents(500, torch.Generator().manual_seed(0), truncation=0.5)
    assert torch.equal(z, again)


def test_conditional_gan_on_2d_mixture(tmp_path):
    # Mixture components are the labels; the 2-D picture then shows points without a D surface.
    cfg = load_config("toy-ring", TINY + ["train.steps=10", "method.name=cgan", "model.embed_dim=4"])
    run = ganforge.train(cfg, tmp_path / "c2d", progress=False, log=lambda *_: None)
    assert ganforge.load_run(run).n_classes == 8
    assert (run / "samples" / "step_000000010.png").is_file() and (run / "eval.json").is_file()


@pytest.mark.parametrize("preset", ["dcgan-emoji", "wgan-gp-emoji", "vae-emoji"])
@pytest.mark.parametrize("resolution", [32, 64])
def test_colour_presets_train_at_32_and_64_px(tmp_path, preset, resolution):
    """Each colour preset builds and trains (2 steps, narrow) on emoji at both sizes, and samples
    colour images of that size."""
    narrow = ["model.ae_width=8"] if preset.startswith("vae") else ["model.g_width=8", "model.d_width=8"]
    cfg = load_config(preset, [f"data.resolution={resolution}", "data.source=emoji-twitter", "train.steps=2",
                               "train.batch_size=8", "train.sample_every=0", *narrow])
    run = ganforge.load_run(ganforge.train(cfg, tmp_path / "run", progress=False, log=lambda *_: None))
    images = run.sample(4, seed=0)
    assert images.shape == (4, 3, resolution, resolution) and images.min() >= -1 and images.max() <= 1


def test_reused_fakes_give_g_the_gradient_of_fresh_fakes_of_the_same_noise():
    """method.reuse_fakes: D sees the handed-on fakes detached (G gets no gradient from D's loss),
    and G's loss through them has exactly the gradient a fresh G(z) of the same z would give."""
    from ganforge.data import Batch, DataSpec
    from ganforge.losses.gan import GAMES
    from ganforge.methods import build_method
    from ganforge.methods.gan import discriminator_loss, generator_loss

    cfg = load_config("toy-ring", TINY + ["method.reuse_fakes=true"])
    models = build_method(cfg, DataSpec((2,), False)).models
    batch = Batch({"x": torch.randn(64, 2)})
    game = GAMES["ns"]

    torch.manual_seed(0)  # discriminator_loss draws z first
    d_out = discriminator_loss(models, batch, game=game, hand_on_fakes=True)
    d_out["loss"].backward()
    assert all(p.grad is None for p in models["G"].parameters())
    assert all(p.grad is not None for p in models["D"].parameters())
    models["D"].zero_grad(set_to_none=True)
    carry = {"handed_fake": d_out.pop("handed_fake")}
    generator_loss(models, batch, carry, game=game)["loss"].backward()
    reused = [p.grad.clone() for p in models["G"].parameters()]

    models["G"].zero_grad(set_to_none=True)
    torch.manual_seed(0)  # generator_loss draws the same z
    generator_loss(models, batch, None, game=game)["loss"].backward()
    fresh = [p.grad for p in models["G"].parameters()]
    assert all(torch.allclose(a, b, rtol=0, atol=1e-7) for a, b in zip(reused, fresh, strict=True))


@pytest.mark.parametrize("preset,overrides", [("toy-ring", []), ("toy-ring", ["method.d_steps=3"]),
                                              ("toy-ring", ["method.name=cgan", "model.embed_dim=4"])])
def test_reuse_fakes_runs_the_generator_once_per_d_step_and_no_more(tmp_path, monkeypatch, preset, overrides):
    """Fresh fakes: k D steps and the G step each run G (k + 1 per iteration); reused: k."""
    import ganforge.methods.gan as gan

    calls = []
    real_run = gan.run_generator
    monkeypatch.setattr(gan, "run_generator", lambda *a: calls.append(1) or real_run(*a))
    k = next((int(o.split("=")[1]) for o in overrides if o.startswith("method.d_steps")), 1)
    for reuse in (False, True):
        calls.clear()
        cfg = load_config(preset, TINY + overrides + ["train.steps=10", "train.health=false",
                                                      f"method.reuse_fakes={str(reuse).lower()}"])
        run = ganforge.train(cfg, tmp_path / f"r{reuse}", progress=False, log=lambda *_: None)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert all(torch.isfinite(torch.tensor(r["loss/G"])) for r in rows)
        assert len(calls) == 10 * (k if reuse else k + 1)


def test_packing_judges_consecutive_samples_joined_along_channels():
    """PacGAN: D(x_1, x_2) is the inner network on [x_1, x_2] stacked on the channel axis, one score per pack."""
    from ganforge.data import DataSpec
    from ganforge.methods import build_method

    # without the preset's minibatch std, whose group statistics would join packs scored one by one
    method = build_method(load_config("dcgan-stacked-mnist", ["method.pack=2", "model.minibatch_std=0"]),
                          DataSpec((3, 28, 28), True, None))
    D = method.models["D"].eval()
    x = torch.randn(6, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    out = D(x)
    assert out.shape == (3,)
    by_hand = D.net(torch.cat([x[2:3], x[3:4]], 1))  # pack 1 = samples 2 and 3
    assert torch.allclose(out[1], by_hand.flatten()[0], atol=1e-6)
    assert D.net.net[0].in_channels == 6
    with pytest.raises(GanforgeError, match="make train.batch_size a multiple of method.pack"):
        D(x[:5])
    with pytest.raises(GanforgeError, match="does not divide into packs of method.pack=4"):
        build_method(load_config("toy-ring", ["method.pack=4", "train.batch_size=250"]), DataSpec((2,), False))
    with pytest.raises(GanforgeError, match="set method.pack=1 for cgan"):
        build_method(load_config("cgan-mnist", ["method.pack=2"]), DataSpec((1, 28, 28), True, 10))


@pytest.mark.parametrize("overrides", [["method.pack=2"], ["method.pack=4", "method.r1_gamma=0.1"],
                                       ["method.name=wgan-gp", "method.pack=2", "method.d_steps=2"]])
def test_packed_games_train_and_evaluate_on_2d_data(tmp_path, overrides):
    cfg = load_config("toy-ring", TINY + ["train.steps=30"] + overrides)
    run = ganforge.train(cfg, tmp_path / "r", progress=False, log=lambda *_: None)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss/D"])) for r in rows)
    pack = cfg.method.pack
    assert f"loss {cfg.method.loss}, packs of {pack}," in (run / "summary.txt").read_text()
    assert json.loads((run / "eval.json").read_text())["modes_total"] == 8
