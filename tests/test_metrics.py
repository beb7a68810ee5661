"""Image-metric functions against closed forms and constructed cases with known answers."""

import math

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.distances import (
    class_histogram,
    classifier_score,
    code_purity,
    confident_share,
    density_coverage,
    fid,
    fid_with_interval,
    frechet_distance,
    gaussian_stats,
    kid,
    precision_recall,
)


def test_frechet_distance_closed_form_diagonal():
    # Diagonal covariances commute: FID = ||mu1 - mu2||^2 + sum (sqrt(s1) - sqrt(s2))^2.
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 4.0, 1.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2  # = 10
    assert frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2)) == pytest.approx(expected, abs=1e-9)


def test_frechet_distance_closed_form_rotated():
    # A shared rotation leaves FID unchanged, and non-commuting covariances still give the exact value:
    # for S1 = I, FID = ||dmu||^2 + tr(I + S2 - 2 S2^(1/2)).
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    s2 = q @ torch.diag(torch.tensor([0.25, 1.0, 4.0, 16.0], dtype=torch.float64)) @ q.T
    expected = 4 + (1 + 0.25 - 1.0) + 0 + (1 + 4 - 4) + (1 + 16 - 8)  # dmu = (2, 0, 0, 0)
    mu2 = torch.tensor([2.0, 0, 0, 0], dtype=torch.float64)
    assert frechet_distance(torch.zeros(4), torch.eye(4), mu2, s2) == pytest.approx(expected, abs=1e-9)
    assert frechet_distance(mu2, s2, mu2, s2) == pytest.approx(0.0, abs=1e-9)


def test_fid_of_samples_near_closed_form_and_interval_covers_it():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    fake = torch.randn(5000, 3, generator=g, dtype=torch.float64) * 2 + torch.tensor([1.0, 0, 0])
    # Exact: |dmu|^2 = 1, sum (1 - 2)^2 = 3  -> 4
    assert fid(real, fake) == pytest.approx(4.0, abs=0.25)
    result = fid_with_interval(gaussian_stats(real), fake, n_boot=30)
    assert result["ci_low"] < result["value"] < result["ci_high"]


def test_kid_is_unbiased_near_zero_for_same_distribution():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(2000, 8, generator=g), torch.randn(2000, 8, generator=g)
    same = kid(a, b, n_subsets=20, subset_size=500)
    shifted = kid(a, b + 1.0, n_subsets=20, subset_size=500)
    assert abs(same["value"]) < 3 * same["std"] + 1e-3
    assert shifted["value"] > 10 * max(same["std"], 1e-4)


def test_precision_recall_on_constructed_sets():
    real = torch.tensor([[float(i), 0.0] for i in range(10)])  # points 1 apart; 3-NN radius 2 (ends 3)
    inside = real + torch.tensor([0.5, 0.0])
    assert precision_recall(real, inside, k=3)["precision"] == 1.0
    far = real + torch.tensor([0.0, 100.0])
    pr = precision_recall(real, far, k=3)
    assert pr["precision"] == 0.0 and pr["recall"] == 0.0
    # Fakes covering only the left half: precision 1, recall = share of reals in the fakes' manifold.
    left = real[:5] + 0.1
    pr = precision_recall(real, left, k=3)
    assert pr["precision"] == 1.0
    # fake 3-NN radii: ends 3.0, inner 2.0; reals 0..7 lie within some ball (4.1 + 3 = 7.1), 8, 9 do not
    assert pr["recall"] == pytest.approx(0.8)


def test_density_and_coverage_on_constructed_sets():
    real = torch.tensor([[float(i), 0.0] for i in range(12)])
    same = real.clone()
    dc = density_coverage(real, same, k=5)
    assert dc["coverage"] == 1.0
    # Each real ball of 5-NN radius >= 3 holds several fakes: density > 1 on a line.
    assert dc["density"] > 1.0
    far = real + 1000
    assert density_coverage(real, far, k=5) == {"density": 0.0, "coverage": 0.0, "k": 5}


def test_classifier_score_and_histogram():
    confident_uniform = torch.eye(10).repeat(10, 1)  # 100 one-hot rows covering all classes evenly
    assert classifier_score(confident_uniform, splits=1)["value"] == pytest.approx(10.0)
    collapsed = torch.zeros(100, 10)
    collapsed[:, 3] = 1
    assert classifier_score(collapsed, splits=1)["value"] == pytest.approx(1.0)
    h = class_histogram(torch.tensor([3] * 100), 10)
    assert h["classes_seen"] == 1 and h["kl_uniform"] == pytest.approx(math.log(10))
    assert class_histogram(torch.arange(10).repeat(5), 10)["kl_uniform"] == pytest.approx(0.0)
    # Clear samples: rows whose top probability reaches 0.9 (by hand: 2 of these 4).
    rows = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.5, 0.5]])
    assert confident_share(rows, 0.9) == 0.5 and confident_share(rows, 0.5) == 1.0
    assert confident_share(confident_uniform) == 1.0 and confident_share(torch.full((7, 10), 0.1)) == 0.0


def test_code_purity_by_hand():
    # Code 0 read as classes 1, 1, 2 -> class 1 (2 of 3); code 1 as 0, 0 -> class 0 (2 of 2); code 2
    # as 0 -> class 0 (1 of 1); code 3 never drawn. Purity (2 + 2 + 1) / 6; codes 1 and 2 share class 0.
    p = code_purity(torch.tensor([1, 1, 2, 0, 0, 0]), torch.tensor([0, 0, 0, 1, 1, 2]), 4, 3)
    assert p["value"] == pytest.approx(5 / 6) and p["code_to_class"][:3] == [1, 0, 0]
    assert p["classes_covered"] == 2 and p["n"] == 6
    # Any relabelling of a perfect split is pure: the codes need not be in the classes' order.
    perm = torch.tensor([3, 0, 2, 1])
    q = code_purity(perm[torch.arange(40) % 4], torch.arange(40) % 4, 4, 4)
    assert q["value"] == 1.0 and q["code_to_class"] == perm.tolist() and q["classes_covered"] == 4
    with pytest.raises(GanforgeError, match="one class and one code per sample"):
        code_purity(torch.zeros(3), torch.zeros(4), 2, 2)


@pytest.mark.parametrize("call, message", [
    (lambda: fid(torch.zeros(1, 3), torch.zeros(5, 3)), "has 1 samples but this metric needs at least 2"),
    (lambda: precision_recall(torch.randn(3, 2), torch.randn(10, 2), k=3), "needs at least 4"),
    (lambda: fid(torch.tensor([[float("nan"), 0.0]] * 3), torch.zeros(3, 2)), "NaN or infinity"),
])
def test_bad_inputs_are_one_line_errors(call, message):
    with pytest.raises(GanforgeError, match=message.replace("(", r"\(")):
        call()


def test_stacked_modes_count_and_kl():
    from ganforge.metrics.distances import stacked_modes

    every_mode = torch.arange(1000).repeat(26)
    s = stacked_modes(every_mode)
    assert s["modes"] == 1000 and s["kl_uniform"] == pytest.approx(0.0, abs=1e-12) and s["n"] == 26000
    one = stacked_modes(torch.full((500,), 123))
    assert one["modes"] == 1 and one["kl_uniform"] == pytest.approx(math.log(1000))
    assert one["kl_channels"] == pytest.approx([math.log(10)] * 3) and one["total_correlation"] == pytest.approx(0)
    # Half 000, half 111: each channel draws two digits evenly, KL ln 5 each; the joint is
    # ln(1000 / 2) = ln 500, so the digits' dependence is ln 500 - 3 ln 5 = 2 ln 2.
    tied = stacked_modes(torch.tensor([0, 111] * 50))
    assert tied["kl_uniform"] == pytest.approx(math.log(500))
    assert tied["kl_channels"] == pytest.approx([math.log(5)] * 3)
    assert tied["total_correlation"] == pytest.approx(2 * math.log(2))
    # Independent channels that each favour one digit: all of the KL is the channels' balance.
    d = torch.tensor([3] * 6 + list(range(10)) * 4)  # digit 3 drawn 10 times in 46, each other 4
    independent = (d[:, None, None] * 100 + d[None, :, None] * 10 + d[None, None, :]).flatten()
    split = stacked_modes(independent)  # 46^3 samples, the product of three equal histograms
    per_channel = 10 / 46 * math.log(100 / 46) + 36 / 46 * math.log(40 / 46)  # 0.0594 nats
    assert split["kl_channels"] == pytest.approx([per_channel] * 3)
    assert split["total_correlation"] == pytest.approx(0, abs=1e-12)
    assert split["kl_uniform"] == pytest.approx(3 * per_channel)


def test_evaluate_prints_where_the_stacked_kl_comes_from():
    from ganforge.cli.evaluate import format_image_metrics
    from ganforge.metrics.distances import stacked_modes

    text = format_image_metrics({"modes": stacked_modes(torch.tensor([0, 111] * 50))})
    assert "modes            2/1000 over 100 samples, KL to uniform 6.215" in text  # ln 500
    assert "= each channel's digit balance 1.609 + 1.609 + 1.609 + digits not independent 1.386" in text
    old_card = {"modes": {"modes": 2, "modes_total": 1000, "n": 100, "kl_uniform": 6.2146}}  # before the split
    assert "digit balance" not in format_image_metrics(old_card)


def test_a_stacked_mnist_run_is_scored_by_channel(tmp_path):
    # Two steps of a narrow DCGAN: whatever it draws, the card's KL is exactly the channels'
    # KLs plus the total correlation, each channel's digit shares sum to 1, and the clear shares
    # are each channel's share of digits read with p >= 0.9.
    import ganforge
    from ganforge.config import load_config

    cfg = load_config("dcgan-stacked-mnist", ["train.steps=2", "train.batch_size=8", "model.g_width=8",
                                              "model.d_width=8", "train.sample_every=0", "train.precision=fp32"])
    run = ganforge.train(cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    card = ganforge.evaluate(run, n=300, log=lambda *_: None)
    m = card["metrics"]["modes"]
    assert m["n"] == 300 and 1 <= m["modes"] <= 300 and card["reference"]["dataset"] == "stacked-mnist"
    assert m["kl_uniform"] == pytest.approx(sum(m["kl_channels"]) + m["total_correlation"])
    assert m["total_correlation"] >= -1e-9 and len(m["kl_channels"]) == 3
    assert [sum(shares) for shares in m["digit_shares"]] == pytest.approx([1.0] * 3)
    assert len(m["clear_channels"]) == 3 and all(0 <= c <= 1 for c in m["clear_channels"])
