"""Methods (model families), registered by name."""

from __future__ import annotations

from ganforge.errors import GanforgeError, did_you_mean
from ganforge.methods.autoencoder import AutoencoderMethod, VAEMethod
from ganforge.methods.base import Method, OptimizerSpec, Phase
from ganforge.methods.cgan import ConditionalGANMethod
from ganforge.methods.gan import GANMethod

METHODS = {"gan": GANMethod, "wgan-gp": GANMethod, "wgan": GANMethod, "cgan": ConditionalGANMethod,
           "ae": AutoencoderMethod, "vae": VAEMethod}


def build_method(cfg, sample_shape: tuple[int, ...], image: bool, n_classes: int | None = None) -> Method:
    """The method named by cfg.method.name; ``n_classes`` (from the data's labels) for conditional ones."""
    name = cfg.method.name
    if name not in METHODS:
        raise GanforgeError(f"unknown method.name '{name}'{did_you_mean(name, METHODS)}; choose one of "
                            f"{', '.join(METHODS)}")
    if name == "cgan":
        return METHODS[name](cfg, sample_shape, image, n_classes)
    return METHODS[name](cfg, sample_shape, image)


__all__ = ["METHODS", "Method", "OptimizerSpec", "Phase", "build_method"]
