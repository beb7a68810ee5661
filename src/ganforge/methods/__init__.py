"""Methods (model families), registered by name.

Registering a method makes ``method.name=<name>`` valid: its ``Options`` become the keys of the
config's method section and its ``model_keys`` the model keys it reads.
"""

from __future__ import annotations

import torch

from ganforge.config import METHOD_SPECS, method_spec, register_method
from ganforge.data import DataSpec
from ganforge.methods.autoencoder import AutoencoderMethod, VAEMethod
from ganforge.methods.base import LRSchedule, Method, OptimizerSpec, Phase
from ganforge.methods.cyclegan import CycleGANMethod
from ganforge.methods.gan import ConditionalGANMethod, GANMethod, WGANGPOptions, WGANOptions
from ganforge.methods.infogan import InfoGANMethod
from ganforge.methods.pix2pix import Pix2PixMethod
from ganforge.methods.selfcond import SelfCondMethod
from ganforge.methods.srgan import SRGANMethod, SRResNetMethod
from ganforge.methods.stylegan import StyleGANMethod
from ganforge.methods.vqvae import VQPriorMethod, VQVAEMethod
from ganforge.train.ema import make_ema

# name -> (method class, its options when they differ from the class's own)
METHODS: dict[str, type[Method]] = {"gan": GANMethod, "wgan-gp": GANMethod, "wgan": GANMethod,
                                    "cgan": ConditionalGANMethod, "infogan": InfoGANMethod,
                                    "selfcond": SelfCondMethod,
                                    "ae": AutoencoderMethod, "vae": VAEMethod,
                                    "pix2pix": Pix2PixMethod, "cyclegan": CycleGANMethod,
                                    "srresnet": SRResNetMethod, "srgan": SRGANMethod, "vqvae": VQVAEMethod,
                                    "vqprior": VQPriorMethod, "stylegan": StyleGANMethod}
_OPTIONS = {"wgan-gp": WGANGPOptions, "wgan": WGANOptions}

for _name, _cls in METHODS.items():
    register_method(_name, _OPTIONS.get(_name, _cls.Options), _cls.model_keys)


def build_method(cfg, data: DataSpec, device: torch.device | str = "cpu", channels_last: bool = False) -> Method:
    """The method named by cfg.method.name with its networks on ``device`` and an EMA copy of
    each network the method names (``method.ema``) when cfg.method.ema_halflife_kimg > 0."""
    method_spec(cfg.method.name)  # a clear error for an unknown name
    method = METHODS[cfg.method.name](cfg, data)
    memory_format = torch.channels_last if (channels_last and data.is_image) else torch.contiguous_format
    for module in (*method.models.values(), *method.fixed_networks().values()):
        module.to(device=device, memory_format=memory_format)
    method.ema = {f"{name}_ema": make_ema(method.models[name]) for name in method.ema_networks()}
    return method


__all__ = ["METHODS", "METHOD_SPECS", "LRSchedule", "Method", "OptimizerSpec", "Phase", "build_method"]
