"""The feature-space sanity check: each disturbance by hand, and the canonical networks' FID
rising monotonically with every disturbance (Heusel et al.'s check of the Inception FID)."""

import pytest
import torch

from ganforge.evaluation import check_extractor, vendor_gap
from ganforge.metrics.disturb import DISTURBANCES, blur, colour_shift, occlusion, salt_and_pepper


def g():
    return torch.Generator().manual_seed(0)


def test_strength_zero_leaves_images_unchanged():
    x = torch.rand(4, 3, 16, 16, generator=g()) * 2 - 1
    for name, (fn, levels, _) in DISTURBANCES.items():
        assert levels[0] == 0 and levels == sorted(levels), name
        assert torch.equal(fn(x, 0.0, g()), x), name


def test_disturbances_by_hand():
    flat = torch.full((2, 1, 12, 12), 0.3)
    assert torch.allclose(blur(flat, 1.5), flat, atol=1e-6)  # a constant image stays constant
    dot = torch.zeros(1, 1, 9, 9)
    dot[0, 0, 4, 4] = 1.0
    b = blur(dot, 1.0)
    assert b[0, 0, 4, 4] < 1 and float(b.sum()) == pytest.approx(1.0, abs=1e-5)  # mass spreads, is kept
    assert torch.allclose(b[0, 0], b[0, 0].T, atol=1e-7)  # and isotropically
    occluded = occlusion(torch.ones(3, 1, 20, 20), 0.5, g())
    assert [(o == 0).sum().item() for o in occluded] == [100, 100, 100]  # one 10x10 grey square each
    sp = salt_and_pepper(torch.zeros(1, 3, 100, 100), 0.2, g())
    hit = (sp[0, 0] != 0)
    assert 0.18 < float(hit.float().mean()) < 0.22 and torch.equal(sp[0, 0] != 0, sp[0, 2] != 0)
    assert set(sp.unique().tolist()) == {-1.0, 0.0, 1.0}
    shifted = colour_shift(torch.zeros(1, 3, 2, 2), 0.4)
    assert shifted[0, :, 0, 0].tolist() == pytest.approx([0.4, -0.4, 0.2])
    assert float(colour_shift(torch.full((1, 1, 2, 2), 0.9), 0.4).max()) == 1.0  # clipped


@pytest.mark.parametrize("name, factor", [("mnist-lenet", 10), ("fashion-lenet", 10), ("emoji-convnet", 4)])
def test_canonical_fid_rises_with_every_disturbance(name, factor):
    """The emoji floor is high (unseen emoji), so its curves rise by a smaller factor."""
    result = check_extractor(name, n=1000, log=lambda *_: None)
    for kind, curve in result["curves"].items():
        assert curve["monotonic"], (kind, curve["fid"])
        assert curve["fid"][-1] > factor * curve["fid"][0], (kind, curve["fid"])  # and by far, not by noise
    assert result["all_monotonic"] and result["extractor"]["origin"] == "canonical"


def test_emoji_features_see_the_vendor_style():
    """Two vendors' drawings of the same test emoji are far apart in emoji-convnet's features;
    two halves of one vendor's test emoji (different emoji, same style, same n) are close."""
    gap = vendor_gap("emoji-convnet", log=lambda *_: None)
    assert len(gap["pairs"]) == 10  # every pair of the five vendors
    for p in gap["pairs"]:
        assert p["n"] >= 140, p  # EmojiOne has fewer emoji than the npm vendors
        assert p["across"] > 1.3 * max(p["within_a"], p["within_b"]), p
        # KID is unbiased at any n: about 0 within one vendor, clearly positive across two
        assert p["kid_across"] > 0.03 and max(p["kid_within_a"], p["kid_within_b"]) < 0.01, p
