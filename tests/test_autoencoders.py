"""Autoencoders and VAEs: loss golden values, the importance-sampling estimator on a model with a
known likelihood, AUROC by hand, every architecture's shapes, and short real training runs."""

import json
import math
import re
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.config import ModelConfig, load_config
from ganforge.losses.vae import (
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_log_likelihood,
    importance_sampled_log_likelihood,
    importance_weighted_bound,
    kl_weight,
    posterior_log_density,
    standard_normal_log_density,
)
from ganforge.metrics.roc import auroc, roc_curve
from ganforge.models.autoencoder import build_autoencoder


def quiet(*_):
    pass


# -- losses by hand ----------------------------------------------------------------------------

def test_gaussian_kl_by_hand():
    # 1/2 [(1 + 1 - 0 - 1) + (0 + 4 - log 4 - 1)] = 1/2 (4 - log 4) = 1.30685
    kl = gaussian_kl(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]]))
    assert float(kl) == pytest.approx(0.5 * (4 - math.log(4)), abs=1e-6)
    assert float(gaussian_kl(torch.zeros(1, 5), torch.zeros(1, 5))) == 0.0  # q = p


def test_likelihoods_by_hand():
    # logits 0 -> p = 1/2 for each of 4 pixels, whatever the target: 4 log(1/2)
    assert float(bernoulli_log_likelihood(torch.zeros(1, 1, 2, 2), torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]]))) \
        == pytest.approx(4 * math.log(0.5))
    # logit 2, target 1: log sigmoid(2) = -0.126928
    assert float(bernoulli_log_likelihood(torch.full((1, 1), 2.0), torch.ones(1, 1))) == pytest.approx(-0.126928,
                                                                                                        abs=1e-6)
    # A perfect mean: -log sigma - log(2 pi)/2 per pixel; off by 1 with sigma 1/2: - 1/(2 * 1/4) more
    ls = torch.tensor(math.log(0.5))
    per_pixel = -math.log(0.5) - 0.5 * math.log(2 * math.pi)
    assert float(gaussian_log_likelihood(torch.zeros(1, 3), torch.zeros(1, 3), ls)) == pytest.approx(3 * per_pixel)
    assert float(gaussian_log_likelihood(torch.zeros(1, 1), torch.ones(1, 1), ls)) == pytest.approx(per_pixel - 2)


def test_kl_warmup_ramps_linearly():
    assert kl_weight(0, 1.0, 10) == 0.0
    assert kl_weight(5000, 1.0, 10) == 0.5
    assert kl_weight(20000, 4.0, 10) == 4.0
    assert kl_weight(0, 2.0, 0) == 2.0


class _LinearGaussianDecoder(torch.nn.Module):
    """p(x|z) = N(W z, sigma^2 I): then p(x) = N(0, W W^T + sigma^2 I) exactly."""

    likelihood = "gaussian"

    def __init__(self, W, sigma):
        super().__init__()
        self.W, self.log_sigma = W, torch.tensor(math.log(sigma))

    def params(self, z):
        return z @ self.W.T


class _FixedEncoder(torch.nn.Module):
    def __init__(self, mu, logvar):
        super().__init__()
        self.out = torch.cat([mu, logvar], 1)

    def forward(self, x):
        return self.out


def test_importance_sampling_recovers_a_known_likelihood():
    torch.manual_seed(0)
    W, sigma = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 0.5
    x = torch.tensor([[1.0, -0.5, 0.2]])
    cov = W @ W.T + sigma ** 2 * torch.eye(3)
    exact = float(torch.distributions.MultivariateNormal(torch.zeros(3), cov).log_prob(x))
    # The exact posterior (W^T W is diagonal, so it is a diagonal Gaussian): every weight equals p(x).
    post_cov = torch.linalg.inv(torch.eye(2) + W.T @ W / sigma ** 2)
    mu = (post_cov @ W.T @ x.T / sigma ** 2).T
    logvar = torch.diagonal(post_cov).log()[None]
    dec = _LinearGaussianDecoder(W, sigma)
    log_px, elbo = importance_sampled_log_likelihood(_FixedEncoder(mu, logvar), dec, x, x, k=10)
    assert float(log_px) == pytest.approx(exact, abs=1e-4)
    assert float(elbo) == pytest.approx(exact, abs=1e-4)  # q = posterior: the bound is tight
    # A poorer q: the ELBO drops well below log p(x); 5,000 samples close most of the gap.
    log_px, elbo = importance_sampled_log_likelihood(_FixedEncoder(mu + 0.3, logvar + 0.5), dec, x, x, k=5000)
    assert float(elbo) < exact - 0.3
    assert float(log_px) == pytest.approx(exact, abs=0.02)


def test_importance_weighted_bound_by_hand():
    # weights 1 and 3: log((1 + 3) / 2) = log 2; one sample: the log weight itself (the ELBO's estimate)
    log_w = torch.tensor([[0.0, -1.0], [math.log(3.0), -1.0]])
    assert importance_weighted_bound(log_w).tolist() == pytest.approx([math.log(2.0), -1.0])
    assert importance_weighted_bound(log_w[:1]).tolist() == pytest.approx([0.0, -1.0])
    # Jensen: the bound is never below the mean of its log weights
    g = torch.Generator().manual_seed(0)
    w = torch.randn(50, 20, generator=g) * 3
    assert (importance_weighted_bound(w) >= w.mean(0) - 1e-6).all()
    # log N(0; 0, 1) per dimension is -log(2 pi)/2; q at eps = 0 with sigma 2 adds -log 2 per dimension
    assert float(standard_normal_log_density(torch.zeros(3))) == pytest.approx(-1.5 * math.log(2 * math.pi))
    assert float(posterior_log_density(torch.zeros(1, 2), torch.full((1, 2), math.log(4.0)))) == pytest.approx(
        -math.log(2 * math.pi) - 2 * math.log(2.0))


def test_iwae_training_raises_its_bound_and_ties_to_the_elbo_at_one_sample():
    """method.iw_samples: the loss is minus L_k of the same model and batch (checked against a
    direct computation), L_k >= the ELBO, and k = 1 is the ELBO path itself."""
    from ganforge.data import Batch, DataSpec
    from ganforge.methods import build_method

    def method_with(k):
        cfg = load_config("vae-mlp-mnist", [f"method.iw_samples={k}", "model.ae_width=32", "model.z_dim=4"])
        torch.manual_seed(0)  # the same weights for every k
        return build_method(cfg, DataSpec((1, 28, 28), True, 10))

    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    batch = Batch(x)
    iwae = method_with(50)
    iwae.images_seen = 10**9  # past the warm-up: w = 1
    torch.manual_seed(2)
    out = iwae.loss(iwae.models, batch)
    # The same draws by hand: eps of shape (k, N, z_dim) from the same seed
    E, G = iwae.models["E"], iwae.models["G"]
    torch.manual_seed(2)
    target = torch.bernoulli((x + 1) / 2)
    mu, logvar = E(target * 2 - 1).chunk(2, 1)
    eps = torch.randn(50, *mu.shape)
    z = mu + torch.exp(0.5 * logvar) * eps
    log_w = (bernoulli_log_likelihood(G.params(z.flatten(0, 1)), target.repeat(50, 1, 1, 1)).view(50, -1)
             + standard_normal_log_density(z) - posterior_log_density(eps, logvar))
    by_hand = -(torch.logsumexp(log_w, 0) - math.log(50)).mean().detach()
    assert float(out["loss"].detach()) == pytest.approx(float(by_hand), rel=1e-5)
    assert float(out["neg_iw_bound"]) == pytest.approx(float(by_hand), rel=1e-5)
    assert float(out["neg_iw_bound"]) < float(out["neg_elbo"])  # L_50 > ELBO on an untrained model
    assert iwae.objective() == "bernoulli decoder, beta 1, IWAE bound k=50"
    out["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in E.parameters() if p.dim() > 1)
    # k = 1: the ELBO path (no neg_iw_bound), with the same weights
    elbo = method_with(1)
    elbo.images_seen = 10**9
    assert "neg_iw_bound" not in elbo.loss(elbo.models, batch)
    with pytest.raises(ganforge.GanforgeError, match="perceptual_weight works with the ELBO only"):
        build_method(load_config("vae-mnist", ["method.iw_samples=5", "method.perceptual_weight=1"]),
                     DataSpec((1, 28, 28), True, 10))


# -- ROC ---------------------------------------------------------------------------------------

def test_auroc_by_hand_and_against_scikit_learn():
    # anomalies score 0.35 and 0.8, normals 0.1 and 0.4: 3 of 4 pairs ordered right
    assert auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == 0.75
    assert auroc(torch.tensor([1.0, 1.0]), torch.tensor([0, 1])) == 0.5  # a tie counts half
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    labels = torch.rand(500, generator=g) < 0.3
    scores = torch.randint(0, 20, (500,), generator=g).float() + labels * 3.0  # many ties
    assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-12)
    fpr, tpr = roc_curve(scores, labels)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    with pytest.raises(ganforge.GanforgeError, match="both normal and anomalous"):
        auroc(torch.ones(3), torch.zeros(3))


def test_anomaly_score_pieces_by_hand():
    from ganforge.anomaly import fit_code_gaussian, log_standardise, log_stats, mahalanobis_sq, relative_error

    # One 1x2x2 image on the [0, 1] scale: ink [0, 0.5, 1, 0] -> 1.5 against background 0; its
    # reconstruction [0, 0.5, 0.5, 0.5] misses by 0.5 twice: squared error 0.5, per unit of ink 1/3.
    x = torch.tensor([[[[0.0, 0.5], [1.0, 0.0]]]]) * 2 - 1
    r = torch.tensor([[[[0.0, 0.5], [0.5, 0.5]]]]) * 2 - 1
    assert float(relative_error(x, r, torch.tensor([0.0]))) == pytest.approx(0.5 / 1.5)
    # On a white background (b = 1) the ink is |x - 1| summed: 1 + 0.5 + 0 + 1 = 2.5.
    assert float(relative_error(x, r, torch.tensor([1.0]))) == pytest.approx(0.5 / 2.5)
    # A blank image counts one pixel of ink, so a blank reconstructed badly still scores high.
    assert float(relative_error(x * 0 - 1, r, torch.tensor([0.0]))) == pytest.approx(0.25 + 0.25 + 0.25)

    # Codes (+-1, +-2) in every combination: mean 0, covariance diag(4/3, 16/3) (n - 1 = 3).
    codes = torch.tensor([[1.0, 2.0], [1.0, -2.0], [-1.0, 2.0], [-1.0, -2.0]])
    gauss = fit_code_gaussian(codes)
    assert gauss["mean"] == pytest.approx([0.0, 0.0])
    assert np.array(gauss["precision"]) == pytest.approx(np.diag([3 / 4, 3 / 16]), rel=1e-5)
    # (z - mu)^T P (z - mu) at (2, 4): 4 * 3/4 + 16 * 3/16 = 6
    assert float(mahalanobis_sq(torch.tensor([[2.0, 4.0]]), gauss)[0]) == pytest.approx(6.0, rel=1e-5)
    # An unused code dimension (always 0) still gives an invertible covariance.
    flat = fit_code_gaussian(torch.cat([codes, torch.zeros(4, 1)], 1))
    assert np.isfinite(np.array(flat["precision"])).all()

    # log-standardised: e^1 and e^3 have log mean 2, std sqrt(2); e^4 lies at (4 - 2) / sqrt 2.
    stats = log_stats(torch.tensor([math.e, math.e ** 3]))
    assert stats == pytest.approx([2.0, math.sqrt(2)])
    assert float(log_standardise(torch.tensor([math.e ** 4]), stats)[0]) == pytest.approx(math.sqrt(2))


# -- architectures -----------------------------------------------------------------------------

@pytest.mark.parametrize("arch,shape", [("mlp", (1, 28, 28)), ("conv", (1, 28, 28)), ("conv", (3, 32, 32)),
                                        ("conv", (1, 64, 64)), ("conv", (3, 64, 64)), ("conv", (3, 128, 128))])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("variational", [False, True])
def test_every_autoencoder_maps_images_to_codes_and_back(arch, shape, likelihood, variational):
    cfg = ModelConfig(arch=arch, z_dim=8, ae_width=16, likelihood=likelihood)
    E, G = build_autoencoder(cfg, shape, True, variational)
    x = torch.rand(4, *shape) * 2 - 1
    h = E(x)
    assert h.shape == (4, 16 if variational else 8)
    out = G(h[:, :8])
    assert out.shape == (4, *shape) and out.min() >= -1 and out.max() <= 1  # the image a user sees
    assert G.params(h[:, :8]).shape == (4, *shape)
    assert hasattr(G, "log_sigma") == (likelihood == "gaussian")


def test_conv_autoencoder_refuses_other_sizes():
    with pytest.raises(ganforge.GanforgeError, match="28, 32, 64 or 128"):
        build_autoencoder(ModelConfig(arch="conv"), (1, 48, 48), True, True)
    with pytest.raises(ganforge.GanforgeError, match="model.arch=mlp or conv"):
        build_autoencoder(ModelConfig(arch="dcgan"), (1, 28, 28), True, True)


# -- real training ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """The conv VAE preset for 400 steps (51k images, ~20 s)."""
    cfg = load_config("vae-mnist", ["train.steps=400", "train.sample_every=200", "train.checkpoint_every=0"])
    return ganforge.train(cfg, tmp_path_factory.mktemp("runs") / "vae", progress=False, log=quiet)


def test_vae_learns_mnist(vae_run):
    rows = [json.loads(x) for x in (vae_run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "neg_elbo" in r]
    # -ELBO in nats per image against grey levels: ~545 (784 log 2) for an untrained decoder.
    assert train[0]["neg_elbo"] > 200 and train[-1]["neg_elbo"] < 140, (train[0]["neg_elbo"], train[-1]["neg_elbo"])
    assert train[-1]["kl"] > 5  # the latents are in use (no posterior collapse)
    # The summary says what its "loss" is: mid warm-up (51.2 of 60 kimg) the KL weight is 0.853, not 1.
    summary = (vae_run / "summary.txt").read_text()
    weight = float(re.search(r"loss = reconstruction \+ w x KL, w = method.beta = 1 ramped from 0 over the first "
                             r"60 kimg, ([0-9.]+) at the end", summary).group(1))
    assert weight == pytest.approx(51.2 / 60, abs=1e-3)
    last, before = train[-1], train[-2]  # over the last interval the weight rose from w(before) to 0.853
    mid_weight = (kl_weight(before["kimg"] * 1000, 1.0, 60) + weight) / 2
    assert last["loss/AE"] == pytest.approx(last["recon"] + mid_weight * last["kl"], rel=0.01)
    run = ganforge.load_run(vae_run)
    samples = run.sample(64, seed=0)
    assert samples.shape == (64, 1, 28, 28)
    # Samples look like MNIST: mostly dark background, some bright strokes.
    assert 0.6 < float((samples < -0.8).float().mean()) < 0.95
    assert (vae_run / "loss_curves.png").exists()
    page = (vae_run / "report.html").read_text()
    assert "id='chart-elbo'" in page and "id='chart-losses'" in page and "bernoulli decoder" in page


def test_reconstruct_arithmetic_interpolate_and_likelihood_commands(vae_run, tmp_path, python_exe):
    def gf(*args):
        res = subprocess.run([python_exe, "-m", "ganforge", *map(str, args)], capture_output=True, text=True)
        return res.returncode, res.stdout, res.stderr

    code, out, err = gf("reconstruct", vae_run, "-n", 16, "-o", tmp_path / "rec.png", "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["n"] == 16 and rec["mse"] < 0.06, rec  # untrained: ~0.25
    assert Image.open(tmp_path / "rec.png").size[1] > Image.open(tmp_path / "rec.png").size[0] / 4  # 4 rows

    code, out, err = gf("arithmetic", vae_run, "--a", "7", "--b", "class:1", "--c", "1", "-o", tmp_path / "ar.png",
                        "--json")
    assert code == 0, err
    ar = json.loads(out)
    assert ar["a"] == "class 7" and ar["b"] == "class 1"
    if ar["classified_as"] is not None:  # 7 - 1 + 1 decodes to the mean 7
        assert ar["classified_as"][0] == 7 and ar["classified_as"][3] == 7

    code, out, err = gf("interpolate", vae_run, "--from-image", "test:0", "--to-image", "test:1", "--steps", 6,
                        "-o", tmp_path / "i.png", "--json")
    assert code == 0, err and json.loads(out)["steps"] == 6
    code, out, err = gf("interpolate", vae_run, "--from-image", 3, "--to-image", "test:1", "-o", tmp_path / "k.png")
    assert code == 1 and "'test:3' for test image #3" in err  # a bare number is a class in `arithmetic`
    code, out, err = gf("interpolate", vae_run, "--from", 1, "--to", 2, "-o", tmp_path / "j.png")
    assert code == 0, err

    code, out, err = gf("likelihood", vae_run, "-k", 20, "-n", 30, "--json")
    assert code == 0, err
    lk = json.loads(out)
    # Importance sampling tightens the bound: log p(x) estimate >= ELBO estimate (per image too).
    assert lk["nll"] <= lk["neg_elbo"] and 60 < lk["nll"] < 200, lk
    assert json.loads(open(lk["card_path"]).read())["k"] == 20

    code, out, err = gf("sample", vae_run, "-n", 8, "-o", tmp_path / "s.png")
    assert code == 0, err


@pytest.fixture(scope="module")
def one_class_run(tmp_path_factory):
    """ae-mnist trained on the digit 1 only (300 steps) with a threshold at 5 % false positives."""
    from ganforge import anomaly

    cfg = load_config("ae-mnist", ["train.steps=300", "train.sample_every=0", "data.classes=[1]"])
    out = tmp_path_factory.mktemp("runs") / "ones"
    record = anomaly.fit(cfg, out, 0.05, progress=False, log=quiet)
    return out, record


def test_anomaly_detector_separates_the_normal_class(one_class_run):
    from ganforge import anomaly
    from ganforge.autoencoding import load_split

    out, record = one_class_run
    assert record["n_calibration"] == 674  # 10 % of the 6,742 training 1s
    assert record["measured_fpr"] == pytest.approx(0.05, abs=0.003)
    run = ganforge.load_run(out)
    x, y = load_split(run, "test")
    scores, recon, maps = anomaly.score_images(run, x[:2000])
    assert maps.shape == (2000, 28, 28)
    auc = auroc(scores, y[:2000] != 1)
    assert auc > 0.95, auc  # a 1 is easy to tell from other digits
    flagged = scores > record["threshold"]
    assert float(flagged[y[:2000] == 1].float().mean()) < 0.12  # about the calibrated 5 % on unseen 1s


def test_a_calibration_written_before_named_scores_still_scores_by_error(one_class_run, tmp_path):
    """An anomaly.json without "kind" (ganforge before the relative and combined scores) keeps
    scoring by the plain reconstruction error against its own threshold."""
    import shutil

    from ganforge import anomaly
    from ganforge.autoencoding import load_split

    out, record = one_class_run
    old = tmp_path / "old"
    shutil.copytree(out, old)
    (old / anomaly.ANOMALY_FILE).write_text(json.dumps({"score": "mean squared reconstruction error per pixel",
                                                        "threshold": 0.01, "fpr": 0.05}))
    run = ganforge.load_run(old)
    x, _ = load_split(run, "test")
    scores, recon, maps = anomaly.score_images(run, x[:50])
    assert torch.allclose(scores, ((recon - x[:50]) / 2).pow(2).flatten(1).mean(1), atol=1e-6)
    assert torch.allclose(scores, maps.flatten(1).mean(1), atol=1e-6)  # one channel: the map's mean


def test_relative_and_combined_scores_flag_the_ones_an_autoencoder_of_eights_reconstructs(tmp_path):
    """An 8 holds most strokes of a 1, so an autoencoder of 8s reconstructs 1s with little squared
    error and the plain error score ranks them as more normal than unseen 8s. Per unit of ink
    (relative) they are reconstructed badly, and their codes lie away from the 8s' (combined)."""
    from ganforge import anomaly
    from ganforge.autoencoding import load_split

    cfg = load_config("ae-mnist-anomaly", ["train.steps=400", "train.sample_every=0", "data.classes=[8]"])
    record = anomaly.fit(cfg, tmp_path / "eights", 0.05, progress=False, log=quiet)
    assert record["kind"] == "combined" and record["background"] == [0.0]
    run = ganforge.load_run(tmp_path / "eights")
    x, y = load_split(run, "test")
    keep = (y == 8) | (y == 1)
    every, _, _ = anomaly.scores_of(run, x[keep], record)
    auc = {name: auroc(v, y[keep] == 1) for name, v in every.items()}
    # measured at 400 steps: error 0.27, relative 0.76, combined 0.92 (1s against 8s)
    assert auc["error"] < 0.4 and auc["relative"] > auc["error"] + 0.3 and auc["combined"] > 0.85, auc


def test_anomaly_score_command_writes_error_maps_and_explains_bad_input(one_class_run, tmp_path, python_exe):
    from ganforge.autoencoding import load_split

    out, _ = one_class_run
    x, y = load_split(ganforge.load_run(out), "test")
    files = []
    for label in (1, 7):
        i = int((y == label).nonzero()[0])
        path = tmp_path / f"digit{label}.png"
        Image.fromarray(((x[i, 0] + 1) * 127.5).round().byte().numpy()).save(path)
        files.append(path)
    res = subprocess.run([python_exe, "-m", "ganforge", "anomaly", "score", str(out), *map(str, files), "--maps",
                          str(tmp_path / "maps"), "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout)["results"]
    assert [r["anomaly"] for r in results] == [False, True]
    assert results[1]["score"] - results[0]["score"] > 3  # standardised: the 7 lies > 3 sd further out
    assert Image.open(results[1]["error_map"]).size == (3 * 112 + 2 * 2 * 4, 112)

    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(tmp_path / "rgb.png")
    for bad, expect in (("big.png", "32x32 grey, the model reads 28x28 grey; pass --resize"),
                        ("rgb.png", "28x28 RGB, the model reads 28x28 grey; pass --resize")):
        res = subprocess.run([python_exe, "-m", "ganforge", "anomaly", "score", str(out), str(tmp_path / bad)],
                             capture_output=True, text=True)
        assert res.returncode == 1 and expect in res.stderr and res.stderr.count("\n") == 1, res.stderr
    res = subprocess.run([python_exe, "-m", "ganforge", "anomaly", "score", str(out), str(tmp_path / "big.png"),
                          "--resize", "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([python_exe, "-m", "ganforge", "anomaly", "score", str(out), str(files[0]), "--fpr", "1.5"],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "between 0 and 1" in res.stderr
    res = subprocess.run([python_exe, "-m", "ganforge", "sample", str(out), "-o", str(tmp_path / "x.png")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "no distribution of codes to sample from" in res.stderr


def test_anomaly_fit_refuses_bad_requests(tmp_path, python_exe):
    for args, expect in ((["--normal-class", "3", "--fpr", "0"], "between 0 and 1"),
                         (["--normal-class", "3", "--score", "ssim"], "unknown anomaly score 'ssim'"),
                         (["--normal-class", "12"], "selects no images"),
                         ([], "say what is normal"),
                         (["--normal-folder", str(tmp_path / "empty")], "")):
        if args and args[0] == "--normal-folder":
            (tmp_path / "empty").mkdir()
        res = subprocess.run([python_exe, "-m", "ganforge", "anomaly", "fit", *args, "--out", str(tmp_path / "r"),
                              "--quiet"], capture_output=True, text=True)
        assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
        assert expect in res.stderr


def test_perceptual_term_and_resume_of_an_autoencoder(tmp_path):
    """The optional perceptual term is logged and trains; an ae run resumes bit-exactly."""
    base = ["train.sample_every=0", "train.checkpoint_every=20", "method.perceptual_weight=0.1",
            "train.batch_size=32", "train.log_every=10"]
    cfg = load_config("ae-mnist", ["train.steps=40", *base])
    full = ganforge.train(cfg, tmp_path / "full", progress=False, log=quiet)
    half = ganforge.train(load_config("ae-mnist", ["train.steps=20", *base]), tmp_path / "half", progress=False,
                          log=quiet)
    from ganforge.api import resume

    resume(half, ["train.steps=40"], progress=False, log=quiet)
    rows = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines() if "recon" in x]
    assert all(r["perceptual"] > 0 for r in rows)
    a, b = ganforge.load_run(full), ganforge.load_run(half)
    for name in ("E", "G"):
        for (k, p), q in zip(a.models[name].state_dict().items(), b.models[name].state_dict().values(), strict=True):
            assert torch.equal(p, q), (name, k)
