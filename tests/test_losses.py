"""Golden values for the GAN losses, including the course's worked example."""

import math

import pytest
import torch

from ganforge.losses.gan import d_loss_bce, g_loss_mm, g_loss_ns

LN10 = math.log(10)


def logits(probs):
    return torch.logit(torch.tensor(probs, dtype=torch.float64))


def test_worked_example_base10():
    # D(x) = [0.6, 0.7, 0.8], D(G(z)) = [0.1, 0.2, 0.3]. By hand, base-10 logs:
    #   L_D_real = -(log .6 + log .7 + log .8)/3 = (0.22185 + 0.15490 + 0.09691)/3 = 0.15789
    #   L_D_fake = -(log .9 + log .8 + log .7)/3 = (0.04576 + 0.09691 + 0.15490)/3 = 0.09919
    #   L_D = 0.25708;  L_G (ns) = -(log .1 + log .2 + log .3)/3 = (1 + 0.69897 + 0.52288)/3 = 0.74062
    # The course notes print 0.157, 0.099 and 0.740 (truncated to 3 places) and L_D = 0.256, the
    # sum of the two truncated terms.
    real, fake = logits([0.6, 0.7, 0.8]), logits([0.1, 0.2, 0.3])
    d = {k: float(v) / LN10 for k, v in d_loss_bce(real, fake).items()}
    g = float(g_loss_ns(fake)) / LN10
    assert d["real"] == pytest.approx(0.15789, abs=1e-5)
    assert d["fake"] == pytest.approx(0.09919, abs=1e-5)
    assert d["loss"] == pytest.approx(0.25708, abs=1e-5)
    assert g == pytest.approx(0.74062, abs=1e-5)
    real3, fake3, g3 = (math.floor(x * 1000) / 1000 for x in (d["real"], d["fake"], g))
    assert (real3, fake3, g3) == (0.157, 0.099, 0.740)
    assert real3 + fake3 == pytest.approx(0.256)


def test_worked_example_natural_log():
    real, fake = logits([0.6, 0.7, 0.8]), logits([0.1, 0.2, 0.3])
    d = d_loss_bce(real, fake)
    assert float(d["real"]) == pytest.approx(-(math.log(.6) + math.log(.7) + math.log(.8)) / 3, abs=1e-9)
    assert float(d["real"]) == pytest.approx(0.36354, abs=1e-5)
    assert float(d["fake"]) == pytest.approx(0.22839, abs=1e-5)
    assert float(d["loss"]) == pytest.approx(0.59194, abs=1e-5)
    assert float(g_loss_ns(fake)) == pytest.approx(1.70533, abs=1e-5)
    # Saturating loss: mean log(1 - D(G(z))) = -L_D_fake.
    assert float(g_loss_mm(fake)) == pytest.approx(-0.22839, abs=1e-5)


def test_losses_are_finite_for_extreme_logits():
    extreme = torch.tensor([-200.0, -50.0, 0.0, 50.0, 200.0], requires_grad=True)
    for loss in (d_loss_bce(extreme, extreme)["loss"], g_loss_mm(extreme), g_loss_ns(extreme)):
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(extreme.grad).all()
        extreme.grad = None


def test_saturating_loss_gradient_vanishes_where_nonsaturating_does_not():
    # D confidently rejects the fakes: D(G(z)) = sigmoid(-8) ~ 3e-4.
    logit = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(g_loss_mm(logit), logit)
    (g_ns,) = torch.autograd.grad(g_loss_ns(logit), logit)
    # d/dl[-softplus(l)] = -sigmoid(l);  d/dl[softplus(-l)] = -(1 - sigmoid(l))
    assert float(g_mm) == pytest.approx(-torch.sigmoid(torch.tensor(-8.0)).item(), rel=1e-6)
    assert float(g_ns) == pytest.approx(-(1 - torch.sigmoid(torch.tensor(-8.0)).item()), rel=1e-6)
    assert abs(float(g_ns)) > 1000 * abs(float(g_mm))


def test_discriminator_optimum_value():
    # At D = 1/2 everywhere, L_D = 2 ln 2 (the value at the game's equilibrium).
    zero = torch.zeros(10)
    assert float(d_loss_bce(zero, zero)["loss"]) == pytest.approx(2 * math.log(2))


def test_r1_penalty_of_linear_discriminator():
    # D(x) = w . x + b has gradient w everywhere, so R1 = ||w||^2 = 3^2 + 4^2 = 25 exactly.
    from ganforge.losses.gan import r1_penalty

    w = torch.tensor([3.0, 4.0], requires_grad=True)
    x = torch.randn(7, 2).requires_grad_(True)
    penalty = r1_penalty(x @ w + 1.0, x)
    assert penalty.requires_grad
    assert penalty.item() == pytest.approx(25.0)
    (dw,) = torch.autograd.grad(penalty, w)  # d||w||^2/dw = 2w: the penalty is trainable
    assert dw.tolist() == pytest.approx([6.0, 8.0])


def test_hinge_lsgan_wasserstein_golden_values():
    from ganforge.losses.gan import (
        d_loss_hinge,
        d_loss_lsgan,
        d_loss_wasserstein,
        g_loss_hinge,
        g_loss_lsgan,
        g_loss_wasserstein,
    )

    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-2.0, 0.0, 1.5])
    # hinge: real max(0, 1 - r) = [0, .5, 2] -> 2.5/3; fake max(0, 1 + f) = [0, 1, 2.5] -> 3.5/3
    h = d_loss_hinge(real, fake)
    assert float(h["real"]) == pytest.approx(2.5 / 3) and float(h["fake"]) == pytest.approx(3.5 / 3)
    assert float(g_loss_hinge(fake)) == pytest.approx(0.5 / 3)  # -mean(fake), mean(fake) = -0.5/3
    # least squares: 1/2 mean((r - 1)^2) = 1/2 (1 + .25 + 4)/3; 1/2 mean(f^2) = 1/2 (4 + 0 + 2.25)/3
    ls = d_loss_lsgan(real, fake)
    assert float(ls["real"]) == pytest.approx(0.5 * 5.25 / 3) and float(ls["fake"]) == pytest.approx(0.5 * 6.25 / 3)
    assert float(g_loss_lsgan(fake)) == pytest.approx(0.5 * (9 + 1 + 0.25) / 3)
    # Wasserstein: E[D(G(z))] - E[D(x)] = (-0.5/3) - (1.5/3)
    w = d_loss_wasserstein(real, fake)
    assert float(w["loss"]) == pytest.approx(-2.0 / 3)
    assert float(g_loss_wasserstein(fake)) == pytest.approx(0.5 / 3)


def test_gradient_penalty_of_linear_critic_is_exact():
    # D(x) = sum(w * x) has gradient w at every x_hat, so the penalty is (||w|| - 1)^2 exactly,
    # whatever the interpolation factors. w over a (2, 3, 3) "image": ||w|| = sqrt(18 * 4) = sqrt(72).
    from ganforge.losses.gan import gradient_penalty

    w = torch.full((2, 3, 3), 2.0)

    def critic(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(5, 2, 3, 3), torch.randn(5, 2, 3, 3)
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((math.sqrt(72) - 1) ** 2)
    # One eps per sample: with eps = 1 the point is the real sample, eps = 0 the fake one.
    seen = []

    def recording_critic(x):
        seen.append(x.detach().clone())
        return critic(x)

    gradient_penalty(recording_critic, real, fake, eps=torch.tensor([1.0, 0.0, 1.0, 0.0, 0.5]))
    assert torch.equal(seen[0][0], real[0]) and torch.equal(seen[0][1], fake[1])
    assert torch.allclose(seen[0][4], (real[4] + fake[4]) / 2)
    # A critic with unit gradient norm pays nothing.
    unit = torch.zeros(2, 3, 3)
    unit[0, 0, 0] = 1.0
    assert gradient_penalty(lambda x: (x * unit).flatten(1).sum(1), real, fake).item() == pytest.approx(0.0)


def test_weight_clipping():
    from ganforge.losses.gan import clip_weights

    layer = torch.nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.mul_(100)
    clip_weights(layer, 0.01)
    assert layer.weight.abs().max().item() <= 0.01 and layer.bias.abs().max().item() <= 0.01


def test_relativistic_game_by_hand():
    """RSGAN pairs the i-th real with the i-th fake. Real logits [2, 0.5], fake logits [0, 1]:
    L_D = mean(softplus(-(2 - 0)), softplus(-(0.5 - 1))) = mean(0.126928, 0.974077) = 0.550503;
    L_G = mean(softplus(-(0 - 2)), softplus(-(1 - 0.5))) = mean(2.126928, 0.474077) = 1.300503."""
    from ganforge.losses.gan import GAMES

    game = GAMES["rsgan"]
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([0.0, 1.0])
    assert float(game.d_loss(real, fake)["loss"]) == pytest.approx(0.550503, abs=1e-6)
    assert float(game.g_loss(real, fake)) == pytest.approx(1.300503, abs=1e-6)
    assert game.g_uses_real and not game.probabilistic and game.threshold == 0.0


def test_info_loss_by_hand():
    """L_I = -E[log Q(c | x)]. Codes [0, 1] with logits [[2, 0], [0, 0]]:
    -log softmax = [log(1 + e^-2), log 2] = [0.126928, 0.693147], mean 0.410038. Uniform logits
    over K codes give log K: Q reads nothing and the bound log K - L_I on I(c; x) is 0."""
    from ganforge.losses.gan import info_loss

    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    assert float(info_loss(logits, torch.tensor([0, 1]))) == pytest.approx(0.410038, abs=1e-6)
    assert float(info_loss(torch.zeros(6, 10), torch.arange(6))) == pytest.approx(math.log(10), abs=1e-6)
    assert info_loss(logits.bfloat16(), torch.tensor([0, 1])).dtype == torch.float32


def test_noise_recovery_loss_by_hand():
    """Mean over all values of (estimate - z)^2: errors 1, -2 | 0, 0.5 give (1 + 4 + 0 + 0.25) / 4."""
    from ganforge.losses.gan import noise_recovery_loss

    z = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    estimate = z + torch.tensor([[1.0, -2.0], [0.0, 0.5]])
    assert float(noise_recovery_loss(estimate, z)) == pytest.approx(1.3125, abs=1e-7)
    assert float(noise_recovery_loss(z, z)) == 0.0
    assert noise_recovery_loss(estimate.bfloat16(), z).dtype == torch.float32


def test_every_game_record_is_complete():
    """Each record's losses run on D's outputs and its flags agree with its maths."""
    from ganforge.losses.gan import GAMES

    real, fake = torch.tensor([1.5, -0.5, 0.2]), torch.tensor([-1.0, 0.3, 0.0])
    for game in GAMES.values():
        d = game.d_loss(real, fake)
        assert torch.isfinite(d["loss"]) and d["loss"].ndim == 0, game.name
        assert torch.isfinite(game.g_loss(real if game.g_uses_real else None, fake)), game.name
        assert game.probabilistic == (game.name in ("ns", "mm"))
        assert game.saturating == (game.name == "mm")
