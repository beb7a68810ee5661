"""The 2-D mixtures and the mode-coverage protocol, on constructed cases with known answers."""

import math

import pytest
import torch

from ganforge.data.toy2d import custom_mixture, grid_mixture, ring_mixture
from ganforge.errors import GanforgeError
from ganforge.metrics.toy2d import mode_statistics


def test_ring_has_eight_distinct_modes_on_unit_circle():
    mix = ring_mixture()
    assert mix.means.shape == (8, 2)
    assert torch.allclose(mix.means.norm(dim=1), torch.ones(8), atol=1e-6)
    assert torch.cdist(mix.means, mix.means).add(torch.eye(8)).min() > 0.7  # 2 sin(pi/8) = 0.765
    assert mix.means[2].tolist() == pytest.approx([0.0, 1.0], abs=1e-6)  # angle 2*pi*2/8
    assert torch.all(mix.stds == 0.01)


def test_grid_modes_and_std():
    mix = grid_mixture()
    assert mix.means.shape == (25, 2)
    assert sorted(set(mix.means[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert torch.all(mix.stds == 0.05)


def test_sampling_matches_std():
    mix = ring_mixture()
    x, comp = mix.sample(20000, torch.Generator().manual_seed(0))
    resid = x - mix.means[comp]
    assert resid.std().item() == pytest.approx(0.01, rel=0.03)
    assert torch.bincount(comp, minlength=8).min() > 2200


def test_perfect_samples_cover_every_mode():
    mix = grid_mixture()
    stats = mode_statistics(mix.means.repeat(4, 1), mix.means, mix.stds)
    assert stats["modes"] == 25 and stats["high_quality"] == 1.0
    assert stats["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_collapsed_samples():
    mix = ring_mixture()
    samples = mix.means[3].repeat(100, 1) + 0.02  # within 3 std (0.03) of mode 3? |0.02*sqrt2| = 0.028
    stats = mode_statistics(samples, mix.means, mix.stds)
    assert stats["modes"] == 1 and stats["high_quality"] == 1.0
    assert stats["reverse_kl"] == pytest.approx(math.log(8))


@pytest.mark.parametrize("mixture", [ring_mixture, grid_mixture])
def test_real_samples_score_the_high_quality_ceiling(mixture):
    # An isotropic 2-D Gaussian puts P(r > 3 std) = exp(-9/2) = 1.11 % beyond the threshold, so the
    # data itself, the best a generator can imitate, scores 98.89 % high quality (not 100 %).
    mix = mixture()
    x, _ = mix.sample(40000, torch.Generator().manual_seed(1))
    stats = mode_statistics(x, mix.means, mix.stds)
    assert stats["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.003)  # ~6 x the binomial spread
    assert stats["modes"] == len(mix.means)


def test_quality_threshold_is_three_std():
    mix = ring_mixture()
    inside = mix.means[:1] + torch.tensor([[0.0299, 0.0]])
    outside = mix.means[:1] + torch.tensor([[0.0301, 0.0]])
    assert mode_statistics(inside, mix.means, mix.stds)["high_quality"] == 1.0
    s = mode_statistics(outside, mix.means, mix.stds)
    assert s["high_quality"] == 0.0 and s["modes"] == 0 and s["reverse_kl"] == math.inf


def test_off_modes_counts_samples_beyond_six_std_of_every_mode():
    # Ring std 0.01: 0.05 out is past high quality but still in the mode's tail; 0.0601 out is
    # off the mode, 0.0599 not yet; the midpoint of two neighbouring modes is off both.
    mix = ring_mixture()
    tail = mix.means[:1] + torch.tensor([[0.05, 0.0]])
    off = mix.means[:1] + torch.tensor([[0.0601, 0.0]])
    edge = mix.means[:1] + torch.tensor([[0.0599, 0.0]])
    between = (mix.means[:1] + mix.means[1:2]) / 2
    stats = mode_statistics(torch.cat([mix.means[:2], tail, off, edge, between]), mix.means, mix.stds)
    assert stats["high_quality"] == pytest.approx(2 / 6)
    assert stats["off_modes"] == pytest.approx(2 / 6)  # `off` and `between`
    # The data itself: a 2-D Gaussian leaves exp(-18) beyond 6 std, so none of 40,000 draws.
    x, _ = mix.sample(40000, torch.Generator().manual_seed(1))
    assert mode_statistics(x, mix.means, mix.stds)["off_modes"] == 0.0


def test_spread_is_one_for_the_data_zero_for_points_and_scales_with_width():
    mix = grid_mixture()
    x, comp = mix.sample(50000, torch.Generator().manual_seed(2))
    assert mode_statistics(x, mix.means, mix.stds)["spread"] == pytest.approx(1.0, abs=0.02)
    # every sample on its mode's centre: no width at all
    assert mode_statistics(mix.means[comp], mix.means, mix.stds)["spread"] == 0.0
    # modes drawn at half the width: all samples high quality, RMS radius sqrt(2) s / 2 over sqrt(1.899) s
    half = mix.means[comp] + (x - mix.means[comp]) / 2
    assert mode_statistics(half, mix.means, mix.stds)["spread"] == pytest.approx(
        math.sqrt(2) / 2 / math.sqrt(1.899), rel=0.02)
    # by hand: one mode with samples at 1 and 2 std, another with a single sample (not counted)
    ring = ring_mixture()
    pts = ring.means[[0, 0, 1]] + torch.tensor([[0.01, 0.0], [0.0, 0.02], [0.0, 0.0]])
    expected = math.sqrt((1 + 4) / 2 / (2 - 9 * math.exp(-4.5) / (1 - math.exp(-4.5))))
    assert mode_statistics(pts, ring.means, ring.stds)["spread"] == pytest.approx(expected, rel=1e-4)


def test_two_mode_histogram_kl():
    mix = custom_mixture([[0, 0], [10, 0], [20, 0], [30, 0]], [0.1])
    # 3/4 of HQ samples in mode 0, 1/4 in mode 1: KL = .75 ln(.75*4) + .25 ln(.25*4) = .75 ln 3
    samples = torch.tensor([[0, 0]] * 3 + [[10, 0]] + [[5, 0]], dtype=torch.float32)
    s = mode_statistics(samples, mix.means, mix.stds)
    assert s["modes"] == 2 and s["high_quality"] == pytest.approx(0.8)
    assert s["reverse_kl"] == pytest.approx(0.75 * math.log(3))


def test_custom_mixture_errors():
    with pytest.raises(GanforgeError, match="toy_means"):
        custom_mixture([1, 2, 3], [0.1])
    with pytest.raises(GanforgeError, match="toy_stds"):
        custom_mixture([[0, 0], [1, 1]], [0.1, 0.2, 0.3])
    with pytest.raises(GanforgeError, match="NaN"):
        mode_statistics(torch.tensor([[float("nan"), 0.0]]), torch.zeros(1, 2), torch.ones(1))
