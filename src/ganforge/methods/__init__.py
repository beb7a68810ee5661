"""Methods (model families), registered by name."""

from __future__ import annotations

from ganforge.errors import GanforgeError, did_you_mean
from ganforge.methods.base import Method, OptimizerSpec, Phase
from ganforge.methods.gan import GANMethod

METHODS = {"gan": GANMethod, "wgan-gp": GANMethod, "wgan": GANMethod}


def build_method(cfg, sample_shape: tuple[int, ...], image: bool) -> Method:
    name = cfg.method.name
    if name not in METHODS:
        raise GanforgeError(f"unknown method.name '{name}'{did_you_mean(name, METHODS)}; choose one of "
                            f"{', '.join(METHODS)}")
    return METHODS[name](cfg, sample_shape, image)


__all__ = ["METHODS", "Method", "OptimizerSpec", "Phase", "build_method"]
