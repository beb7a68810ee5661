"""The small calculations a student does by hand, shown step by step.

- ``gan_losses``: the GAN losses from a handful of discriminator outputs, in any log base;
- ``conv_volumes``: the output volume, parameters and FLOPs of a stack of conv / pool / fc layers,
  with out = floor((I + 2P - K) / S) + 1.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from ganforge.errors import GanforgeError
from ganforge.losses.gan import d_loss_bce, g_loss_mm, g_loss_ns

LOG_BASES = {"10": 10.0, "e": math.e, "2": 2.0}


def _check_probs(name: str, values: list[float]) -> None:
    if not values:
        raise GanforgeError(f"--{name} needs at least one discriminator output")
    bad = [v for v in values if not 0 < v < 1]
    if bad:
        raise GanforgeError(f"--{name} values must lie strictly between 0 and 1 (they are probabilities "
                            f"D(.)); got {bad[0]}")


def gan_losses(real: list[float], fake: list[float], log_base: str = "10") -> dict:
    """L_D_real, L_D_fake, L_D, L_G (non-saturating) and L_G (saturating) from D's outputs.

    The values come from ganforge's own loss functions (on logits), divided by ln(base); the
    ``steps`` are the same sums written out term by term.
    """
    _check_probs("real", real)
    _check_probs("fake", fake)
    if log_base not in LOG_BASES:
        raise GanforgeError(f"--log-base must be one of 10, e, 2; got {log_base}")
    base = LOG_BASES[log_base]
    ln_base = math.log(base)
    r, f = torch.logit(torch.tensor(real, dtype=torch.float64)), torch.logit(torch.tensor(fake, dtype=torch.float64))
    d = d_loss_bce(r, f)
    values = {"L_D_real": float(d["real"]) / ln_base, "L_D_fake": float(d["fake"]) / ln_base,
              "L_D": float(d["loss"]) / ln_base, "L_G_ns": float(g_loss_ns(f)) / ln_base,
              "L_G_mm": float(g_loss_mm(f)) / ln_base}
    lg = "log" if log_base == "e" else f"log{log_base}"

    def terms(xs: list[float], complement: bool) -> str:
        """'log10(0.6) [-0.2218] + ...' or, with complement, 'log10(1 - 0.1) [-0.0458] + ...'."""
        prefix = "1 - " if complement else ""
        return " + ".join(f"{lg}({prefix}{x:g}) [{math.log(1 - x if complement else x, base):.4f}]" for x in xs)

    steps = {
        "L_D_real": f"-(1/{len(real)}) [{terms(real, False)}]",
        "L_D_fake": f"-(1/{len(fake)}) [{terms(fake, True)}]",
        "L_D": f"L_D_real + L_D_fake = {values['L_D_real']:.4f} + {values['L_D_fake']:.4f}",
        "L_G_ns": f"-(1/{len(fake)}) [{terms(fake, False)}]",
        "L_G_mm": f"(1/{len(fake)}) [{terms(fake, True)}] = -L_D_fake",
    }
    return {"log_base": log_base, "values": values, "steps": steps}


@dataclass(frozen=True)
class Volume:
    h: int
    w: int
    c: int

    def __str__(self) -> str:
        return f"{self.h}x{self.w}x{self.c}"


def parse_volume(text: str) -> Volume:
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*", text)
    if not m or 0 in map(int, m.groups()):
        raise GanforgeError(f"--input must look like HxWxC with positive sizes, e.g. 227x227x3; got '{text}'")
    return Volume(*map(int, m.groups()))


def _parse_layer(spec: str, index: int) -> tuple[str, list[int], dict]:
    parts = spec.split(":")
    kind, positional, options = parts[0], [], {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            options[k] = v
        else:
            positional.append(p)
    try:
        positional = [int(p) for p in positional]
        options = {k: int(v) for k, v in options.items()}
    except ValueError:
        raise GanforgeError(f"layer {index} ('{spec}'): sizes must be integers") from None
    expected = {"conv": 2, "pool": 1, "fc": 1}
    if kind not in expected or len(positional) != expected[kind] or set(options) - {"stride", "pad"}:
        raise GanforgeError(f"layer {index} ('{spec}') is not conv:FILTERS:KERNEL[:stride=S][:pad=P], "
                            "pool:KERNEL[:stride=S][:pad=P] or fc:UNITS")
    return kind, positional, options


def conv_volumes(input_volume: str, layers: list[str]) -> list[dict]:
    """Each layer's output volume, parameter count and FLOPs (2 per multiply-add; pooling counts
    one operation per window element)."""
    vol = parse_volume(input_volume)
    rows = []
    for i, spec in enumerate(layers, 1):
        kind, pos, opt = _parse_layer(spec, i)
        if kind == "fc":
            n_in = vol.h * vol.w * vol.c
            out = Volume(1, 1, pos[0])
            params, flops = n_in * pos[0] + pos[0], 2 * n_in * pos[0]
            formula = f"{n_in} inputs -> {pos[0]} units"
        else:
            k = pos[-1]
            s, p = opt.get("stride", 1 if kind == "conv" else k), opt.get("pad", 0)
            if s < 1 or p < 0 or k < 1:
                raise GanforgeError(f"layer {i} ('{spec}'): kernel and stride must be >= 1 and pad >= 0")
            if k > min(vol.h, vol.w) + 2 * p:
                raise GanforgeError(f"layer {i} ('{spec}'): kernel {k} does not fit the {vol.h}x{vol.w} input "
                                    f"with padding {p}")
            h, w = (vol.h + 2 * p - k) // s + 1, (vol.w + 2 * p - k) // s + 1
            channels = pos[0] if kind == "conv" else vol.c
            out = Volume(h, w, channels)
            if kind == "conv":
                params = k * k * vol.c * channels + channels
                flops = 2 * k * k * vol.c * channels * h * w
            else:
                params, flops = 0, k * k * channels * h * w
            formula = f"floor(({vol.h} + 2*{p} - {k}) / {s}) + 1 = {h}"
        rows.append({"layer": spec, "input": str(vol), "output": str(out), "params": params, "flops": flops,
                     "formula": formula})
        vol = out
    return rows


def model_summary(method) -> dict[str, list[dict]]:
    """Each trained network of a method: its leaf layers with their output shapes (for a batch of
    2) and parameter counts."""
    from torch import nn

    out: dict[str, list[dict]] = {}
    inputs = method.example_inputs(2)
    for name, module in method.models.items():
        rows: list[dict] = []
        hooks = []
        for layer_name, layer in module.named_modules():
            if len(list(layer.children())) == 0 and not isinstance(layer, nn.Embedding):
                def hook(mod, inp, outp, layer_name=layer_name, rows=rows):
                    rows.append({"layer": layer_name, "type": type(mod).__name__,
                                 "output": list((outp[0] if isinstance(outp, tuple) else outp).shape[1:]),
                                 "params": sum(p.numel() for p in mod.parameters(recurse=False))})
                hooks.append(layer.register_forward_hook(hook))
        was_training = module.training
        module.eval()
        device = next(iter([*module.parameters(), *module.buffers()])).device  # an EMA codebook has only buffers
        with torch.no_grad():
            module(*(t.to(device) for t in inputs[name]))
        module.train(was_training)
        for h in hooks:
            h.remove()
        out[name] = rows
    return out
