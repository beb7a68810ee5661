"""VQ-VAE: the quantiser by hand (nearest code, straight-through gradient, the EMA update with
Laplace smoothing, dead-code restarts) and a short MNIST run whose codebook must stay alive."""

from __future__ import annotations

import pytest
import torch

import ganforge
from ganforge.config import config_from_dict
from ganforge.errors import GanforgeError
from ganforge.models.vq import CodePrior, VectorQuantizer
from ganforge.report.plots import read_metrics


def quiet(*_):
    pass


def grid(vectors) -> torch.Tensor:
    """Vectors (N, D) as a (1, D, 1, N) encoder output."""
    return torch.tensor(vectors, dtype=torch.float32).t()[None, :, None, :]


def test_nearest_code_and_straight_through_gradient():
    q = VectorQuantizer(3, 2, ema=False, dead_below=0).eval()
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    z = grid([[0.9, 0.2], [0.1, 0.1], [0.2, 0.7]]).requires_grad_(True)
    z_q, codes, stats = q(z)
    assert codes.flatten().tolist() == [1, 0, 2]
    assert torch.allclose(z_q, grid([[1, 0], [0, 0], [0, 1]]))
    (z_q * torch.arange(6.0).view(1, 2, 1, 3)).sum().backward()
    assert torch.equal(z.grad, torch.arange(6.0).view(1, 2, 1, 3))  # copied straight through
    # commitment = mean |z - z_q|^2 over the 6 numbers
    expected = sum(v ** 2 for v in (0.1, 0.2, 0.1, 0.1, 0.2, 0.3)) / 6
    assert float(stats["commitment"].detach()) == pytest.approx(expected, rel=1e-5)
    assert float(stats["perplexity"]) == pytest.approx(3.0)  # three codes used once each


def test_ema_update_with_laplace_smoothing_by_hand():
    q = VectorQuantizer(2, 1, ema=True, decay=0.5, eps=0.1, dead_below=0)
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[0.0], [10.0]]))
        q.embed_sum.copy_(torch.tensor([[0.0], [10.0]]))
        q.cluster_size.copy_(torch.tensor([1.0, 1.0]))
    q(grid([[1.0], [3.0], [9.0]]))  # codes 0, 0, 1
    # N = 0.5 * [1, 1] + 0.5 * [2, 1] = [1.5, 1];  m = 0.5 * [0, 10] + 0.5 * [4, 9] = [2, 9.5]
    assert q.cluster_size.tolist() == [1.5, 1.0]
    assert q.embed_sum.flatten().tolist() == [2.0, 9.5]
    n = 2.5
    smoothed = [(1.5 + 0.1) / (n + 0.2) * n, (1.0 + 0.1) / (n + 0.2) * n]
    assert q.codebook.flatten().tolist() == pytest.approx([2.0 / smoothed[0], 9.5 / smoothed[1]], rel=1e-6)


def test_cached_sampling_draws_what_the_teacher_forced_prior_gives():
    """Sampling with the key/value cache must agree with the plain causal forward pass: the
    inverse-CDF picks of forward(codes) under the same uniforms are the drawn codes, and the
    prior never looks ahead (changing a later code leaves earlier logits alone)."""
    torch.manual_seed(0)
    prior = CodePrior(n_codes=7, length=6, width=16, layers=2, heads=2).eval()
    u = torch.rand(5, 6, generator=torch.Generator().manual_seed(1))
    codes = prior.sample(u)
    with torch.no_grad():
        probs = torch.softmax(prior(codes).float(), -1)
    picks = (probs.cumsum(-1) < u[..., None]).sum(-1).clamp(max=6)
    assert torch.equal(picks, codes)
    changed = codes.clone()
    changed[:, 4] = (changed[:, 4] + 1) % 7
    with torch.no_grad():
        assert torch.allclose(prior(changed)[:, :5], prior(codes)[:, :5], atol=1e-6)
        assert not torch.allclose(prior(changed)[:, 5], prior(codes)[:, 5])


def test_dead_codes_restart_at_batch_vectors():
    torch.manual_seed(0)
    q = VectorQuantizer(4, 2, ema=True, decay=0.9, dead_below=0.5)
    vectors = [[5.0, 5.0], [5.1, 5.0], [-5.0, 5.0]]
    q(grid(vectors))  # every code starts with a zero count: all four restart at batch vectors
    assert int(q.restarts) == 4
    rows = {tuple(round(v, 4) for v in row) for row in q.codebook.tolist()}
    assert rows <= {tuple(v) for v in vectors}  # each restarted code sits on a vector of the batch
    assert torch.equal(q.cluster_size, torch.full((4,), 0.5))  # with a grace of one threshold


def test_the_codebook_loss_variant_trains_the_codebook_by_gradient(tmp_path):
    from ganforge.api import build

    cfg = config_from_dict({"method": {"name": "vqvae", "codebook": "loss"}, "data": {"source": "digits"},
                            "model": {"ae_width": 8, "res_blocks": 1, "codebook_size": 16, "code_dim": 4}})
    method = build(cfg, log=quiet)
    spec = method.optimizers()["AE"]
    assert spec.networks == ("E", "Q", "G")
    assert isinstance(method.models["Q"].codebook, torch.nn.Parameter)


def vq_config(steps: int, dead_below: float):
    return config_from_dict({
        "name": "tiny-vqvae", "data": {"source": "mnist"},
        "model": {"ae_width": 32, "res_blocks": 1, "codebook_size": 128, "code_dim": 16},
        "method": {"name": "vqvae", "lr": 1e-3, "dead_below": dead_below},
        "train": {"steps": steps, "batch_size": 64, "log_every": 50, "sample_every": 0, "checkpoint_every": 1000,
                  "health": False, "precision": "fp32"}})


def test_a_short_mnist_run_reconstructs_and_restarts_keep_the_codebook_alive(tmp_path):
    last = {}
    for dead_below in (1.0, 0.0):
        run = ganforge.train(vq_config(400, dead_below), tmp_path / f"dead{dead_below}", progress=False, log=quiet)
        last[dead_below] = [r for r in read_metrics(run) if "recon_over_var" in r][-1]
    with_restarts, without = last[1.0], last[0.0]
    print(f"with restarts {with_restarts}\nwithout {without}")
    assert with_restarts["recon_over_var"] < 0.15  # 0.098 here
    assert with_restarts["codes_used"] > 0.8 and with_restarts["perplexity"] > 40  # 0.90 and 71 here
    assert without["codes_used"] < with_restarts["codes_used"] and without["perplexity"] < with_restarts["perplexity"]


def test_the_prior_learns_the_codes_samples_them_and_is_measured(tmp_path, capsys):
    from ganforge.api import load_run
    from ganforge.cli import main

    vq = ganforge.train(vq_config(300, 1.0), tmp_path / "vq", progress=False, log=quiet)
    cfg = config_from_dict({
        "name": "tiny-prior", "data": {"source": "mnist"},
        "model": {"prior_width": 32, "prior_layers": 2, "prior_heads": 2},
        "method": {"name": "vqprior", "vq_run": str(vq), "lr": 1e-3},
        "train": {"steps": 150, "batch_size": 64, "log_every": 50, "sample_every": 0, "checkpoint_every": 1000,
                  "health": False, "precision": "fp32"}})
    run_dir = ganforge.train(cfg, tmp_path / "prior", progress=False, log=quiet)
    rows = [r for r in read_metrics(run_dir) if "bits_per_code" in r]
    assert rows[-1]["bits_per_code"] < rows[0]["bits_per_code"] - 1.0  # from about log2(128) = 7 bits
    run = load_run(run_dir)
    samples = run.sample(6, seed=4)
    assert samples.shape == (6, 1, 28, 28) and torch.equal(samples, run.sample(6, seed=4))
    assert not torch.equal(samples, run.sample(6, seed=5))
    assert main(["evaluate", str(run_dir), "-n", "500", "--metrics", "fid"]) == 0
    out = capsys.readouterr().out
    assert "bits per code on the test split (10000 images x 49 codes)" in out


def test_the_prior_names_its_vqvae_run_clearly(tmp_path):
    from ganforge.api import build

    def prior(vq_run, source="mnist"):
        return config_from_dict({"method": {"name": "vqprior", "vq_run": vq_run}, "data": {"source": source}})

    with pytest.raises(GanforgeError, match="method.vq_run is empty; name the vqvae run"):
        build(prior(""), log=quiet)
    with pytest.raises(GanforgeError, match="no finished run of preset vqvae-mnist under runs/"):
        build(prior("vqvae-mnist"), log=quiet)
