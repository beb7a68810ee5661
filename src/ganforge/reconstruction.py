"""How much of a picture survives a run's code: the reconstruction of a whole split at a stated
number of bits per image, for the conv autoencoder, the VAE (its posterior mean) and VQ-VAE, and
a VQ-VAE's codebook in pictures.

Bits per image. A VQ-VAE code is an h x w grid of entries of a K-code book: h w log2 K bits
(7 x 7 x 9 = 441 for vqvae-mnist). An autoencoder's or VAE's code is z_dim real numbers, which
hold as many bits as they are stored with; to compare at equal bits each number is quantised
here to ``latent_bits`` bits: 2^b evenly spaced levels between its 0.1th and 99.9th percentiles
over the training split (outside values clamp), so z_dim x b bits per image (55 x 8 = 440). The
card also gives the unquantised (float32) result, so the price of the quantisation is visible.

Scores, on grey levels / channels in [0, 1]: MSE per pixel, MSE over the split's pixel variance,
PSNR per image (10 log10 1 / MSE) as mean and standard error, and the FID of the reconstructions
against the originals in the dataset's feature network (0 for a perfect reconstruction).
"""

from __future__ import annotations

import math
import time

import torch

from ganforge.errors import GanforgeError

LOW_PERCENTILE, HIGH_PERCENTILE = 0.001, 0.999


def is_vq(run) -> bool:
    """A run whose code is a grid of codebook entries (it decodes codes; ae and vae have a decoder network)."""
    return hasattr(run.method, "decode")


def require_reconstructing(run) -> None:
    if not (is_vq(run) or hasattr(run.method, "decoder")):
        raise GanforgeError(f"{run.run_dir} was trained with method {run.config.method.name}, which has no "
                            "encoder; reconstructions need an ae, vae or vqvae run")


def quantise(z: torch.Tensor, low: torch.Tensor, high: torch.Tensor, bits: int) -> torch.Tensor:
    """Each column of z (N, D) rounded to one of 2^bits levels evenly spaced over [low, high]
    (per column; values outside clamp to the end levels)."""
    levels = 2 ** bits - 1
    span = (high - low).clamp_min(1e-8)
    t = ((z - low) / span).clamp(0, 1)
    return torch.round(t * levels) / levels * span + low


@torch.no_grad()
def latent_range(run, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-latent 0.1th and 99.9th percentiles of the training split's codes (D,), (D,)."""
    from ganforge.autoencoding import encode, load_split

    x, _ = load_split(run, "train")
    z = encode(run, x, batch)
    return torch.quantile(z, LOW_PERCENTILE, dim=0), torch.quantile(z, HIGH_PERCENTILE, dim=0)


def bits_per_image(run, latent_bits: int | None) -> float:
    """What one picture's code holds: h w log2 K for VQ-VAE, z_dim x latent_bits otherwise."""
    if is_vq(run):
        return run.method.code_bits
    return run.method.decoder.z_dim * latent_bits if latent_bits else run.method.decoder.z_dim * 32.0


@torch.no_grad()
def reconstruct_all(run, x: torch.Tensor, latent_bits: int | None = 8, batch: int = 500) -> dict:
    """Reconstructions of pictures x (N, C, H, W) in [-1, 1] through the run's code.

    Returns ``recon`` (N, C, H, W) in [-1, 1]; for VQ-VAE also ``codes`` (N, h, w); for an
    autoencoder or VAE with ``latent_bits``, ``float_recon`` from the unquantised code too."""
    from ganforge.autoencoding import decode, encode

    if is_vq(run):
        codes, recon = [], []
        for chunk in x.split(batch):
            c = run.method.encode(chunk.to(run.device))
            codes.append(c.cpu())
            recon.append(run.method.decode(c).float().clamp(-1, 1).cpu())
        return {"recon": torch.cat(recon), "codes": torch.cat(codes)}
    z = encode(run, x, batch)
    float_recon = torch.cat([decode(run, part).float().cpu() for part in z.split(batch)])
    if not latent_bits:
        return {"recon": float_recon}
    low, high = latent_range(run)
    zq = quantise(z, low, high, latent_bits)
    recon = torch.cat([decode(run, part).float().cpu() for part in zq.split(batch)])
    return {"recon": recon, "float_recon": float_recon}


@torch.no_grad()
def reconstruct(run, split: str = "test", n: int = 32, seed: int = 0) -> dict:
    """n seeded images of ``split`` and their reconstructions (ae, vae or vqvae), alternating rows of 8; with the
    mean squared error per pixel on the [0, 1] grey scale."""
    from ganforge.autoencoding import load_split

    require_reconstructing(run)
    x, _ = load_split(run, split)
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    originals = x[pick]
    recon = reconstruct_all(run, originals, latent_bits=None)["recon"]
    mse = pixel_scores(recon, originals)["mse"]  # equal-sized pictures: the mean of per-picture MSEs
    rows = [t for i in range(0, n, 8) for t in (originals[i:i + 8], recon[i:i + 8])]
    return {"grid": torch.cat(rows), "mse": mse, "n": len(originals), "indices": pick.tolist()}


def pixel_scores(recon: torch.Tensor, x: torch.Tensor) -> dict:
    """MSE, MSE / variance and PSNR per image of reconstructions, all on the [0, 1] scale."""
    err = ((recon.float() - x.float()) / 2).pow(2).flatten(1).mean(1)  # (N,) per-image MSE
    psnr = 10 * torch.log10(1 / err.clamp_min(1e-10))
    n = len(err)
    variance = float(((x.float() + 1) / 2).var())
    return {"mse": float(err.mean()), "mse_over_var": float(err.mean()) / max(variance, 1e-12),
            "psnr": {"mean": float(psnr.mean()), "se": float(psnr.std() / math.sqrt(n)) if n > 1 else 0.0}}


def code_usage(codes: torch.Tensor, n_codes: int) -> dict:
    """Use of a codebook over a split: counts per code, perplexity exp(H(p)) and the fraction used."""
    counts = torch.bincount(codes.flatten(), minlength=n_codes).double()
    p = counts / counts.sum()
    entropy = float(-(p[p > 0] * p[p > 0].log()).sum())
    return {"perplexity": math.exp(entropy), "used": float((counts > 0).double().mean()),
            "codes": n_codes, "counts": [int(c) for c in counts]}


def code_patches(x: torch.Tensor, codes: torch.Tensor, counts: list[int], n: int = 64,
                 cells: int = 3) -> tuple[torch.Tensor, list[int]]:
    """What codes stand for, in real pictures: for ``n`` codes spread evenly over the ranks of use
    (the most used first, the rarest used last), the ``cells`` x ``cells`` code cells of a picture
    around one place the code was chosen (its middle occurrence in the split, so the choice is
    fixed). Returns patches (n, C, 4 cells, 4 cells) in [-1, 1] and the codes shown."""
    import torch.nn.functional as F

    used = sorted((k for k in range(len(counts)) if counts[k] > 0), key=lambda k: -counts[k])
    if not used:
        return x[:0, :, :4 * cells, :4 * cells], []
    m = min(n, len(used))
    picks = list(dict.fromkeys(used[round(i * (len(used) - 1) / max(m - 1, 1))] for i in range(m)))
    pad = 4 * (cells // 2)
    padded = F.pad(x.float(), (pad, pad, pad, pad), mode="replicate")  # so border cells have neighbours
    patches = []
    for k in picks:
        where = (codes == k).nonzero()  # (M, 3): picture, row, column
        i, r, c = (int(v) for v in where[len(where) // 2])
        patches.append(padded[i, :, 4 * r:4 * r + 4 * cells, 4 * c:4 * c + 4 * cells])
    return torch.stack(patches), picks


def fid_of_reconstructions(run, x: torch.Tensor, recon: torch.Tensor, extractor: str | None = None,
                           log=print) -> tuple[dict, dict] | None:
    """FID of reconstructions against their originals in the dataset's feature network (or the
    one named), with its record; None when the data has no feature network of its shape."""
    from ganforge.evaluation import extractor_record, fit_to
    from ganforge.metrics import distances
    from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor

    name = extractor or DEFAULT_FOR_DATASET.get(run.config.data.source)
    if not name:
        return None
    fx = load_extractor(name, log=log)
    shape = fx.spec.input_shape
    if not (shape is None or tuple(x.shape[1:]) == shape or extractor):
        return None
    real = fx.run(fit_to(x, fx))[0]
    fake = fx.run(fit_to(recon, fx))[0]
    fid = {**distances.fid_with_interval(distances.gaussian_stats(real), fake), "n_real": len(real),
           "n_fake": len(fake)}
    return fid, extractor_record(fx)


def reconstruction_card(run, split: str = "test", latent_bits: int | None = 8, n: int | None = None,
                        extractor: str | None = None, log=print) -> dict:
    """Reconstruct ``split`` (or its first n pictures) and score it; the card is written to
    ``RUN/eval/reconstruction_step_*.json`` with the examples (and, for VQ-VAE, the codebook)
    beside it as PNG files."""
    import json

    from ganforge.autoencoding import load_split
    from ganforge.report.images import save_grid

    require_reconstructing(run)
    if latent_bits is not None and not 1 <= latent_bits <= 16:
        raise GanforgeError(f"--latent-bits must be between 1 and 16, got {latent_bits}")
    t0 = time.perf_counter()
    x, _ = load_split(run, split)
    if n is not None:
        if n < 2:
            raise GanforgeError(f"-n must be at least 2, got {n}")
        x = x[:n]
    vq = is_vq(run)
    bits = None if vq else latent_bits
    log(f"reconstructing {len(x)} {split} pictures of {run.config.data.source}")
    out = reconstruct_all(run, x, bits)
    metrics = pixel_scores(out["recon"], x)
    card = {"run": str(run.run_dir), "step": run.step, "method": run.config.method.name,
            "split": split, "n": len(x), "bits_per_image": bits_per_image(run, bits), "metrics": metrics}
    if vq:
        card["code"] = (f"{out['codes'].shape[1]}x{out['codes'].shape[2]} codes of a {run.config.model.codebook_size}"
                        "-entry codebook")
    else:
        z_dim = run.method.decoder.z_dim
        what = "posterior mean" if run.method.variational else "code"
        card["code"] = (f"{z_dim} latents ({what}), each quantised to {bits} bits over its training-split "
                        f"{100 * LOW_PERCENTILE:g}-{100 * HIGH_PERCENTILE:g} percentile range" if bits else
                        f"{z_dim} float32 latents ({what})")
        if "float_recon" in out:
            card["float_codes"] = pixel_scores(out["float_recon"], x)
    fid = fid_of_reconstructions(run, x, out["recon"], extractor, log)
    if fid:
        metrics["fid"], card["extractor"] = fid
    eval_dir = run.run_dir / "eval"
    eval_dir.mkdir(exist_ok=True)
    # a subset or another bit depth gets a card of its own and never overwrites the whole split's
    stem = f"step_{run.step:09d}" + (f"_b{bits}" if bits else "") + (f"_n{len(x)}" if n is not None else "")
    rows = [t for i in range(0, 32, 8) for t in (x[i:i + 8], out["recon"][i:i + 8])]
    save_grid(torch.cat(rows), eval_dir / f"reconstructions_{stem}.png", nrow=8)
    card["examples"] = {"path": f"reconstructions_{stem}.png",
                        "caption": f"{split} pictures (odd rows) and their reconstructions (even rows)"}
    if vq:
        usage = code_usage(out["codes"], run.config.model.codebook_size)
        patches, _ = code_patches(x, out["codes"], usage["counts"])
        save_grid(patches, eval_dir / f"codebook_{stem}.png", nrow=8, pad_value=128)
        usage["picture"] = f"codebook_{stem}.png"
        card["codebook"] = usage
        metrics["perplexity"], metrics["codes_used"] = usage["perplexity"], usage["used"]
    card["time_s"] = round(time.perf_counter() - t0, 1)
    path = eval_dir / f"reconstruction_{stem}.json"
    path.write_text(json.dumps(card, indent=2))
    card["card_path"] = str(path)
    return card
