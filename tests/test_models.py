"""Contracts every registered architecture must meet, for every shape it supports."""

import pytest
import torch
from safetensors.torch import load, save

from ganforge.config import ModelConfig
from ganforge.models import ARCHITECTURES, build_models

# (architecture, sample shape, is_image)
CASES = [("mlp", (2,), False), ("mlp", (1, 8, 8), True)] + [
    ("dcgan", (c, s, s), True) for s in (28, 32, 64) for c in (1, 3)] + [("dcgan", (3, 128, 128), True)]


def test_every_architecture_is_covered():
    assert {arch for arch, _, _ in CASES} == set(ARCHITECTURES)


def _build(arch, shape, image, seed=0, **options):
    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, z_dim=16, g_width=16, d_width=16, g_depth=2, d_depth=2, **options)
    return build_models(cfg, shape, image)


# Discriminator options every architecture must honour.
OPTIONS = [{"spectral_norm": True}, {"d_norm": "layer"}, {"d_norm": "none", "spectral_norm": True}]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("arch, shape, image", [CASES[0], CASES[3]])
def test_discriminator_options(arch, shape, image, options):
    G, D = _build(arch, shape, image, **options)
    x = G(torch.randn(4, G.z_dim))
    D(x).sum().backward()
    assert all(p.grad is not None for p in D.parameters())
    if options.get("spectral_norm"):
        # After a few power iterations every constrained weight has spectral norm ~1.
        for _ in range(30):
            D(x)
        for m in D.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
                assert float(sigma) == pytest.approx(1.0, abs=0.05)
    if options.get("d_norm") in ("layer", "none"):
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
        # Without batch norm each sample's output depends on that sample alone (the gradient
        # penalty needs this).
        D.eval()  # eval: no power iteration between the two calls when spectral norm is on
        with torch.no_grad():
            assert torch.allclose(D(x)[:1], D(x[:1]), atol=1e-5)


@pytest.mark.parametrize("arch, shape, image", CASES)
def test_shapes_and_ranges(arch, shape, image):
    G, D = _build(arch, shape, image)
    z = torch.randn(5, G.z_dim)
    x = G(z)
    assert x.shape == (5, *shape)
    if image:
        assert x.min() >= -1 and x.max() <= 1
    logits = D(x)
    assert logits.shape == (5,)


@pytest.mark.parametrize("arch, shape, image", CASES)
def test_gradients_reach_every_parameter(arch, shape, image):
    G, D = _build(arch, shape, image)
    D(G(torch.randn(4, G.z_dim))).sum().backward()
    for name, module in (("G", G), ("D", D)):
        for pname, p in module.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}.{pname}"
            assert p.grad.abs().sum() > 0, f"{name}.{pname} got a zero gradient"


@pytest.mark.parametrize("arch, shape, image", CASES)
def test_deterministic_and_safetensors_round_trip(arch, shape, image):
    G1, D1 = _build(arch, shape, image, seed=3)
    G2, D2 = _build(arch, shape, image, seed=3)
    for a, b in ((G1, G2), (D1, D2)):
        for (k, v1), v2 in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(v1, v2), k
    G3, D3 = _build(arch, shape, image, seed=4)
    G3.load_state_dict(load(save(G1.state_dict())))
    D3.load_state_dict(load(save(D1.state_dict())))
    z = torch.randn(3, G1.z_dim)
    G1.eval(), G3.eval(), D1.eval(), D3.eval()
    assert torch.equal(G1(z), G3(z))
    assert torch.equal(D1(G1(z)), D3(G1(z)))


def test_dcgan_rejects_other_sizes():
    from ganforge.errors import GanforgeError

    with pytest.raises(GanforgeError, match="28, 32, 64 and 128"):
        _build("dcgan", (1, 48, 48), True)
    with pytest.raises(GanforgeError, match="model.arch=mlp"):
        _build("dcgan", (2,), False)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_latent_projection_is_the_transposed_convolution_it_replaces(bias, memory_format):
    """DCGAN's first layer as a matrix product: the same outputs and weight gradients as
    ConvTranspose2d on 1 x 1 inputs, the same state dict, channels_last out of a channels_last weight."""
    from torch import nn

    from ganforge.models.dcgan import LatentProjection

    torch.manual_seed(0)
    conv = nn.ConvTranspose2d(20, 12, 7, 1, 0, bias=bias).to(memory_format=memory_format)
    proj = LatentProjection(20, 12, 7, 1, 0, bias=bias)
    proj.load_state_dict(conv.state_dict())
    proj = proj.to(memory_format=memory_format)
    z = torch.randn(5, 20, 1, 1)
    expected, got = conv(z), proj(z)
    assert got.shape == (5, 12, 7, 7) and torch.allclose(got, expected, atol=1e-6)
    assert got.is_contiguous(memory_format=memory_format)
    g_expected = torch.autograd.grad(expected.square().sum(), conv.weight)[0]
    g_got = torch.autograd.grad(got.square().sum(), proj.weight)[0]
    assert torch.allclose(g_got, g_expected, atol=1e-5)
    wider = torch.randn(2, 20, 3, 3)  # not 1 x 1: the convolution itself
    assert proj(wider).shape == (2, 12, 9, 9) and torch.allclose(proj(wider), conv(wider), atol=1e-6)


def test_dcgan_minibatch_std_lets_d_see_the_batchs_variety():
    # With layer norm nothing else in D mixes the batch: a picture's score changes with the other
    # pictures of its group only through the appended std feature (ProGAN's minibatch std).
    from ganforge.errors import GanforgeError
    from ganforge.models.conditional import ConditionalDiscriminator
    from ganforge.models.layers import MinibatchStd

    G, D = _build("dcgan", (3, 28, 28), True, d_norm="layer", minibatch_std=4)
    assert isinstance(D.net[-2], MinibatchStd) and D.net[-1].in_channels == 16 * 2 + 1
    x = G(torch.randn(4, G.z_dim)).detach()
    with torch.no_grad():
        same = D(x[:1].expand(4, -1, -1, -1).contiguous())  # four copies: the std feature is ~0
        varied = D(torch.cat([x[:1], x[1:]]))
        assert torch.allclose(same, same[:1].expand(4), atol=1e-6)
        assert not torch.allclose(same[0], varied[0], atol=1e-4)  # picture 0's score depends on its group
        assert torch.allclose(D(x.to(memory_format=torch.channels_last)), varied, atol=1e-5)
    D(x).sum().backward()
    assert all(p.grad is not None for p in D.parameters())
    conditional = ConditionalDiscriminator(D, 10)  # cgan/selfcond: the feature is part of the projected body
    assert conditional(x, torch.arange(4)).shape == (4,)
    with pytest.raises(GanforgeError, match="model.minibatch_std is a feature map of the dcgan discriminator"):
        _build("mlp", (2,), False, minibatch_std=4)


def test_dcgan_extra_layers_add_depth_at_the_smallest_resolution():
    # 28 px: G projects z to 7x7 and D reduces to 7x7; each extra layer is a 3x3 conv there with
    # the width of that resolution (in D one layer takes a unit's view from 10x10 to 18x18 pixels).
    from ganforge.errors import GanforgeError

    G0, D0 = _build("dcgan", (1, 28, 28), True)
    G2, D1 = _build("dcgan", (1, 28, 28), True, g_extra_layers=2, d_extra_layers=1)
    convs = lambda m: [x for x in m.modules() if isinstance(x, torch.nn.Conv2d) and x.kernel_size == (3, 3)]  # noqa: E731
    assert len(convs(G0)) == len(convs(D0)) == 0 and len(convs(G2)) == 2 and len(convs(D1)) == 1
    assert all(c.in_channels == c.out_channels == 32 for c in convs(G2) + convs(D1))  # width 16 * 2 at 7x7
    z = torch.randn(4, G2.z_dim)
    x = G2(z)
    assert x.shape == (4, 1, 28, 28) and x.abs().max() <= 1
    D1(x).sum().backward()
    assert D1(x).shape == (4,) and all(p.grad is not None for p in D1.parameters())
    # Each extra layer of G is one bias-free 3x3 conv and its batch norm's scale and shift.
    n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n_params(G2) == n_params(G0) + 2 * (32 * 32 * 9 + 2 * 32)
    with pytest.raises(GanforgeError, match="model.g_extra_layers and d_extra_layers are convolutions"):
        _build("mlp", (2,), False, d_extra_layers=1)
