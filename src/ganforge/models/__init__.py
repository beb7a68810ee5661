"""Architectures, registered by name. ``build_models`` is the only place names become classes."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ganforge.errors import GanforgeError, did_you_mean
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.layers import apply_spectral_norm
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator


def _mlp(cfg, shape, image):
    if cfg.minibatch_std:
        raise GanforgeError("model.minibatch_std is a feature map of the dcgan discriminator; set model.arch=dcgan "
                            "or model.minibatch_std=0")
    if cfg.g_extra_layers or cfg.d_extra_layers:
        raise GanforgeError("model.g_extra_layers and d_extra_layers are convolutions of the dcgan networks; set "
                            "model.arch=dcgan, or model.g_depth / d_depth for the MLP's hidden layers")
    return (MLPGenerator(cfg.z_dim, shape, cfg.g_width, cfg.g_depth, image=image),
            MLPDiscriminator(shape, cfg.d_width, cfg.d_depth))


def _dcgan(cfg, shape, image):
    if not image or len(shape) != 3:
        raise GanforgeError("the dcgan architecture needs image data; use model.arch=mlp for 2-D points")
    return (DCGANGenerator(cfg.z_dim, shape, cfg.g_width, cfg.g_extra_layers),
            DCGANDiscriminator(shape, cfg.d_width, cfg.d_norm, cfg.minibatch_std, cfg.d_extra_layers))


# name -> f(model_cfg, sample_shape, is_image) -> (generator, discriminator)
ARCHITECTURES: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {"mlp": _mlp, "dcgan": _dcgan}


def build_models(cfg, sample_shape: tuple[int, ...], image: bool) -> tuple[nn.Module, nn.Module]:
    if cfg.arch not in ARCHITECTURES:
        raise GanforgeError(f"unknown model.arch '{cfg.arch}'{did_you_mean(cfg.arch, ARCHITECTURES)}; "
                            f"choose one of {', '.join(ARCHITECTURES)}")
    G, D = ARCHITECTURES[cfg.arch](cfg, tuple(sample_shape), image)
    if cfg.spectral_norm:
        apply_spectral_norm(D)
    return G, D
