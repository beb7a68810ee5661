"""Upscaling with a super-resolution run (srresnet, srgan), and measuring it.

* :func:`upscale_tiled` upscales a picture of any size in tiles: each tile is cut with a margin of
  the network's receptive radius (every input pixel that can reach its outputs), upscaled, and
  only its centre kept, so the stitched picture equals one pass over the whole (no seams) while
  memory stays bounded.
* :func:`comparison_row` makes the ``--compare`` strip: nearest | bicubic | model | original, for an
  original picture that is first downscaled by the run's scale.
* :func:`evaluate_upscaling` scores a run on held-out pictures as the SRGAN paper does: the
  original is mod-cropped to a multiple of the scale, downscaled (bicubic, antialiased, 8 bits:
  data/resample.py) and upscaled back; PSNR and SSIM on the luma channel Y of ITU-R BT.601 (as
  MATLAB's ``rgb2ycbcr``) with ``scale`` pixels of border cropped, and on RGB; for bicubic and
  for the model; on the run's held-out split and on the natural photographs that scikit-image
  bundles (:data:`PHOTOS`, never used for training); plus the FID of 64x64 crops of the upscaled
  pictures against the same crops of the originals.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ganforge.data.folders import read_picture
from ganforge.data.resample import (
    bicubic_downscale,
    bicubic_upscale,
    centre_crop_to_multiple,
    nearest_upscale,
    quantise,
)
from ganforge.errors import GanforgeError

#: colour photographs in scikit-image's own data folder (no download): the natural-photo test set
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg", "ihc.png",
          "motorcycle_left.png", "retina.jpg")
FID_CROP = 64


def require_upscaler(run) -> None:
    if not hasattr(run.method, "upscale"):
        raise GanforgeError(f"{run.run_dir} is not a super-resolution run (method {run.config.method.name}); "
                            "upscale with a srresnet or srgan run")


def upscale_tiled(method, images: torch.Tensor, tile: int = 96, device="cpu") -> torch.Tensor:
    """``method.upscale`` over (N, C, h, w) pictures of any size, ``tile`` x ``tile`` input pixels at
    a time, each cut with ``method.receptive_radius`` pixels of margin: the same output as one pass."""
    if tile < 1:
        raise GanforgeError(f"--tile must be at least 1 pixel, got {tile}")
    s, margin = method.scale, method.receptive_radius
    n, c, h, w = images.shape
    if h <= tile and w <= tile:
        return method.upscale(images, device)
    out = torch.empty(n, c, h * s, w * s)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            t0, l0 = max(top - margin, 0), max(left - margin, 0)
            t1, l1 = min(bottom + margin, h), min(right + margin, w)
            piece = method.upscale(images[..., t0:t1, l0:l1], device)
            out[..., top * s:bottom * s, left * s:right * s] = \
                piece[..., (top - t0) * s:(bottom - t0) * s, (left - l0) * s:(right - l0) * s]
    return out


def comparison_row(method, original: torch.Tensor, tile: int = 96, device="cpu") -> torch.Tensor:
    """(4, C, H', W'): nearest | bicubic | model | original for an original (1, C, H, W), mod-cropped
    to the scale and downscaled first, as the evaluation does."""
    s = method.scale
    hr = centre_crop_to_multiple(original, s)
    if min(hr.shape[-2:]) < s:
        raise GanforgeError(f"a {original.shape[-1]}x{original.shape[-2]} picture is too small to downscale by {s}")
    lr = bicubic_downscale(hr, s)
    return torch.cat([nearest_upscale(lr, s), bicubic_upscale(lr, s), upscale_tiled(method, lr, tile, device), hr])


# -- measuring -------------------------------------------------------------------------------

def luma(images: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of (N, 3, H, W) RGB in [-1, 1], returned in [-1, 1] units of [0, 1]:
    Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in [0, 1] (range 16/255 to
    235/255, as MATLAB's rgb2ycbcr). Grey pictures are their own luma."""
    if images.shape[1] == 1:
        return images
    rgb = (images.double() + 1) / 2
    y = (16 + 65.481 * rgb[:, 0] + 128.553 * rgb[:, 1] + 24.966 * rgb[:, 2]) / 255
    return (y * 2 - 1)[:, None]


def sr_scores(outputs: torch.Tensor, originals: torch.Tensor, border: int) -> dict:
    """PSNR and SSIM on Y and on RGB with ``border`` pixels cropped on each side, per picture
    (mean and standard error), of 8-bit-rounded outputs."""
    from ganforge.metrics import paired

    crop = (slice(None), slice(None), slice(border, -border or None), slice(border, -border or None))
    out, ref = quantise(outputs)[crop], originals[crop]
    scores = {}
    for space, a, b in (("y", luma(out), luma(ref)), ("rgb", out, ref)):
        scores[f"psnr_{space}"] = paired.summarise(paired.psnr(a, b))
        scores[f"ssim_{space}"] = paired.summarise(paired.ssim(a, b))
    return scores


def fid_crops(images: torch.Tensor, side: int = FID_CROP, limit: int = 64) -> torch.Tensor:
    """Non-overlapping ``side`` x ``side`` crops of each picture (at most ``limit`` per picture, in
    reading order): what the FID of upscaled pictures compares. A picture smaller than ``side``
    gives its centre square, resized to ``side`` (bilinear)."""
    import torch.nn.functional as F

    crops = []
    for img in images:
        h, w = img.shape[-2:]
        if min(h, w) < side:
            m = min(h, w)
            square = img[None, :, (h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m]
            crops.append(F.interpolate(square, size=(side, side), mode="bilinear", align_corners=False)[0])
            continue
        taken = [img[:, t:t + side, s:s + side] for t in range(0, h - side + 1, side)
                 for s in range(0, w - side + 1, side)][:limit]
        crops += taken
    return torch.stack(crops) if crops else torch.empty(0, images.shape[1], side, side)


def natural_photos(channels: int = 3) -> tuple[list[str], list[torch.Tensor]]:
    """scikit-image's bundled colour photographs (:data:`PHOTOS`) as (1, C, H, W) in [-1, 1]."""
    from importlib import resources

    try:
        root = resources.files("skimage") / "data"
    except ModuleNotFoundError:
        raise GanforgeError("the natural-photo test set comes with scikit-image; install it (pip install "
                            "scikit-image)") from None
    names, pictures = [], []
    for name in PHOTOS:
        path = Path(str(root / name))
        if path.is_file():
            names.append(Path(name).stem)
            pictures.append(read_picture(path, channels, (255, 255, 255)))
    return names, pictures


def _score_set(method, originals: list[torch.Tensor], fx, device, seed: int) -> dict:
    """Bicubic and the model on one test set of pictures (each (1, C, H, W), sizes may differ)."""
    from ganforge.evaluation import fit_to
    from ganforge.metrics import distances as dist
    from ganforge.metrics.paired import summarise

    s = method.scale
    results = {"bicubic": [], "model": []}
    crops = {"original": [], "bicubic": [], "model": []}
    for hr in originals:
        hr = centre_crop_to_multiple(hr, s)
        lr = bicubic_downscale(hr, s)
        for kind, up in (("bicubic", bicubic_upscale(lr, s)), ("model", upscale_tiled(method, lr, device=device))):
            results[kind].append(sr_scores(up, hr, s))
            crops[kind].append(fid_crops(quantise(up)))
        crops["original"].append(fid_crops(hr))
    card = {"pictures": len(originals)}
    for kind, per_picture in results.items():
        card[kind] = {}
        for metric in per_picture[0]:
            values = torch.tensor([p[metric]["mean"] for p in per_picture], dtype=torch.float64)
            card[kind][metric] = summarise(values)
    real = torch.cat(crops["original"])
    if fx is not None and len(real) >= 2:
        real_stats = dist.gaussian_stats(fx.run(fit_to(real, fx))[0])
        for kind in ("bicubic", "model"):
            fake = fx.run(fit_to(torch.cat(crops[kind]), fx))[0]
            card[kind]["fid"] = {**dist.fid_with_interval(real_stats, fake, seed=seed), "n_crops": len(real)}
    card["psnr_y_gain_db"] = card["model"]["psnr_y"]["mean"] - card["bicubic"]["psnr_y"]["mean"]
    return card


def evaluate_upscaling(run, n: int | None = None, seed: int = 0, extractor: str | None = None, photos: bool = True,
                       device="cpu", log=print, examples: int = 4) -> dict:
    """A super-resolution run on its held-out split (``n`` seeded pictures, default all) and on the
    natural photographs: bicubic vs the model, PSNR/SSIM (Y and RGB) and FID of crops. The card
    also holds ``example_rows``, a tensor (not JSON): nearest | bicubic | model | original rows of
    ``examples`` evenly spaced held-out pictures, for the caller to save as a picture."""
    import dataclasses

    from ganforge.data import load_dataset
    from ganforge.evaluation import extractor_record
    from ganforge.metrics.features import load_extractor
    from ganforge.version import __version__

    require_upscaler(run)
    t0 = time.perf_counter()
    method, data_cfg = run.method, run.config.data
    data = load_dataset(dataclasses.replace(data_cfg, split="test"), log=lambda *_: None)
    pick = torch.arange(len(data))
    if n is not None and n < len(data):
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    held_out = [data.x[i:i + 1].float() / 127.5 - 1 for i in pick.tolist()]
    channels = held_out[0].shape[1]
    fx = load_extractor(extractor or "emoji-convnet", log=log) if channels == 3 else None
    sets = {f"{data_cfg.source} test": _score_set(method, held_out, fx, device, seed)}
    if photos:
        names, pictures = natural_photos(channels)
        if pictures:
            sets["photos"] = {**_score_set(method, pictures, fx, device, seed), "names": names}
    shown = torch.linspace(0, len(held_out) - 1, min(examples, len(held_out))).round().long().tolist()
    example_rows = torch.cat([comparison_row(method, held_out[i], device=device) for i in shown])
    s = method.scale
    protocol = (f"each original mod-cropped to a multiple of {s}, downscaled x{s} (bicubic, antialiased, rounded to "
                f"8 bits) and upscaled back by bicubic interpolation and by the model (rounded to 8 bits); PSNR (dB) "
                f"and SSIM (11x11 Gaussian window, sigma 1.5) with {s} px of border cropped, on the BT.601 luma Y "
                f"(MATLAB rgb2ycbcr, the SRGAN paper's protocol) and on RGB, data range 1, mean and standard error "
                f"over pictures; FID of the non-overlapping {FID_CROP}x{FID_CROP} crops of the upscaled pictures "
                f"against the same crops of the originals")
    return {"run": str(run.run_dir), "step": run.step, "checkpoint": run.checkpoint.name,
            "kimg": run.state["images_seen"] / 1000, "scale": s, "method": run.config.method.name,
            "extractor": extractor_record(fx) if fx else None, "protocol": protocol,
            "ganforge_version": __version__, "time_s": round(time.perf_counter() - t0, 2), "test_sets": sets,
            "example_rows": example_rows,
            "examples": {"pictures": [int(pick[i]) for i in shown], "columns": 4,
                         "caption": "held-out pictures: nearest | bicubic | model | original"}}
