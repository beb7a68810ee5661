"""Differentiable augmentation for GANs on small datasets (Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training"; also lightweight-gan): the same random transforms
are applied to real and generated pictures before the discriminator sees them, and gradients flow
through them to the generator, so D cannot memorise a small training set while G still learns the
un-augmented pictures.

- translation: shift each picture by up to 1/8 of its size in x and y, filling with zeros
  (mid-grey in [-1, 1]);
- cutout: set a random square of half the picture's side to zero.

Random numbers come from the global RNG of the pictures' device (checkpoints restore it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError

POLICIES = ("translation", "cutout")


def parse_policy(text: str) -> tuple[str, ...]:
    """'translation,cutout' -> ('translation', 'cutout'); '' -> (); unknown names -> ValueError."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation '{unknown[0]}'; choose from {', '.join(POLICIES)}")
    return names


def method_policy(text: str) -> tuple[str, ...]:
    """``method.augment`` parsed for a method: as :func:`parse_policy`, with an unknown name
    reported as a one-line :class:`GanforgeError` that names the key."""
    try:
        return parse_policy(text)
    except ValueError as e:
        raise GanforgeError(f"method.augment: {e}") from None


def translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each picture (B, C, H, W) by a random whole number of pixels in [-ratio H, ratio H]
    (and likewise in x), zero-filled. A gather, so the gradient reaches x."""
    b, c, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] + dy + sy  # (B, H, 1) in the padded picture
    cols = torch.arange(w, device=x.device)[None, None, :] + dx + sx  # (B, 1, W)
    padded = F.pad(x, (sx, sx, sy, sy))                               # (B, C, H + 2 sy, W + 2 sx)
    flat = padded.flatten(2)                                          # (B, C, (H + 2 sy)(W + 2 sx))
    index = (rows * (w + 2 * sx) + cols).flatten(1)                   # (B, H W)
    return flat.gather(2, index[:, None].expand(-1, c, -1)).view(b, c, h, w)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random (ratio H) x (ratio W) square of each picture (clipped at the borders)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    top, left = cy - ch // 2, cx - cw // 2
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)  # (B, H, W)
    return x * (~inside)[:, None].to(x.dtype)


def augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """Apply the policy's transforms in order (none: x itself)."""
    for name in policy:
        x = translate(x) if name == "translation" else cutout(x)
    return x
