"""What a trained autoencoder or VAE run can do: encode groups of images and do
arithmetic with their codes, interpolate between two images, and measure test likelihood.

Each function takes a loaded run (:func:`ganforge.api.load_run`) whose method is "ae" or "vae".
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from ganforge.errors import GanforgeError

#: the likelihood protocol's binarisation of the test split (fixed, so numbers are comparable)
BINARIZE_SEED = 0


def require_autoencoder(run) -> None:
    """A run whose code is a vector of reals (ae or vae): what arithmetic and interpolation need."""
    if not hasattr(run.method, "decoder"):
        raise GanforgeError(f"{run.run_dir} was trained with method {run.config.method.name}; this command needs "
                            "an autoencoder run (method.name=ae or vae)")


def load_split(run, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The run's dataset split as floats in [-1, 1] (N, C, H, W) and labels, with the run's own
    resolution and channels (but none of its class filter or hold-out: a test split is whole)."""
    import dataclasses

    from ganforge.data import load_dataset

    cfg = dataclasses.replace(run.config.data, split=split, classes=[], holdout=0.0)
    ds = load_dataset(cfg, log=lambda *_: None)
    return ds.x.float() / 127.5 - 1, ds.y


@torch.no_grad()
def encode(run, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Codes (N, z_dim) of images in [-1, 1]: z for an autoencoder, the posterior mean for a VAE."""
    require_autoencoder(run)
    check_shape(run, images)
    return torch.cat([run.method.encode(chunk.to(run.device)).float().cpu() for chunk in images.split(batch)])


@torch.no_grad()
def decode(run, z: torch.Tensor) -> torch.Tensor:
    return run.method.generate({"z": z}, run.device, network=run.method.decoder)


def check_shape(run, images: torch.Tensor) -> None:
    want = tuple(run.info["sample_shape"])
    if tuple(images.shape[1:]) != want:
        c, h, w = want
        raise GanforgeError(f"images of shape {tuple(images.shape[1:])} do not fit this model, which reads {c} "
                            f"channel(s) of {h}x{w}; pass --resize to convert them")


def parse_group(run, text: str) -> tuple[str, torch.Tensor]:
    """A group of images: 'class:K' or 'K' (class K of the test split), or image files / a folder
    separated by commas."""
    spec = text.strip()
    if spec.startswith("class:") or spec.isdigit():
        k = int(spec.split(":", 1)[-1])
        x, y = load_split(run, "test")
        if y is None:
            raise GanforgeError(f"'{spec}' names a class, but {run.config.data.source} has no labels; give image "
                                "files instead")
        if not (y == k).any():
            raise GanforgeError(f"class {k} has no test images; classes are {int(y.min())}..{int(y.max())}")
        return f"class {k}", x[y == k]
    paths = [Path(p) for p in spec.split(",") if p]
    images = read_images(paths, run)
    return f"{len(images)} image(s)", images


def image_files(paths: list[Path]) -> list[Path]:
    """The image files named by ``paths``: files as given, folders as their images, sorted."""
    from ganforge.data.sources import IMAGE_EXTENSIONS

    files = []
    for p in paths:
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.is_file():
            files.append(p)
        else:
            raise GanforgeError(f"no such image or folder: {p}")
    if not files:
        raise GanforgeError(f"no PNG or JPEG images in {', '.join(map(str, paths))}")
    return files


def read_images(paths: list[Path], run, resize: bool = False, shape: tuple | None = None) -> torch.Tensor:
    """Image files (or folders of them) as (N, C, H, W) in [-1, 1], checked against the model.

    With ``resize`` an image of another size or colour mode is converted exactly as training
    converts a folder of images (short side scaled, centre crop, alpha onto white)."""
    from PIL import Image

    from ganforge.data.sources import prepare_image

    c, h, w = shape or run.info["sample_shape"]
    mode = "L" if c == 1 else "RGB"
    out = []
    for f in image_files(paths):
        try:
            with Image.open(f) as img:
                img.load()
                if ((img.width, img.height) != (w, h) or img.mode != mode) and not resize:
                    got = "grey" if img.mode in ("L", "1", "I", "I;16") else img.mode
                    raise GanforgeError(f"{f} is {img.width}x{img.height} {got}, the model reads {w}x{h} "
                                        f"{'grey' if c == 1 else 'RGB'}; pass --resize to convert it")
                out.append(torch.from_numpy(prepare_image(img, h, c)))
        except (OSError, ValueError) as e:
            raise GanforgeError(f"cannot read {f} as an image ({e}); pass PNG or JPEG files") from None
    return torch.stack(out).float() / 127.5 - 1


@torch.no_grad()
def arithmetic(run, a: str, b: str, c: str) -> dict:
    """Decode mean(code of group a) - mean(b) + mean(c), beside the decoded group means."""
    require_autoencoder(run)
    names, means = [], []
    for spec in (a, b, c):
        name, images = parse_group(run, spec)
        names.append(name)
        means.append(encode(run, images).mean(0))
    z = torch.stack([*means, means[0] - means[1] + means[2]])
    images = decode(run, z)
    result = {"groups": names, "images": images}
    from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor

    source = run.config.data.source
    if source in DEFAULT_FOR_DATASET and DEFAULT_FOR_DATASET[source] != "inception":
        try:
            fx = load_extractor(DEFAULT_FOR_DATASET[source])
            if tuple(images.shape[1:]) == fx.spec.input_shape:
                probs = fx.run(images)[1]
                result["classified_as"] = [int(p.argmax()) for p in probs]
                result["confidence"] = [round(float(p.max()), 3) for p in probs]
        except GanforgeError:
            pass
    return result


@torch.no_grad()
def interpolate_images(run, first: torch.Tensor, second: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """``steps`` decodings along the straight line between the codes of two images."""
    if steps < 2:
        raise GanforgeError(f"--steps must be at least 2, got {steps}")
    z = encode(run, torch.stack([first, second]))
    t = torch.linspace(0, 1, steps)[:, None]
    return decode(run, (1 - t) * z[0] + t * z[1])


@torch.no_grad()
def likelihood_card(run, k: int = 5000, n: int | None = None, seed: int = 0, log=print) -> dict:
    """:func:`likelihood`, written as a card ``RUN/eval/likelihood_step_*_k*.json`` (a subset of the
    test split gets a card of its own, ``..._n<N>.json``, and never overwrites the full one)."""
    import json

    card = likelihood(run, k, n, seed, log)
    card.update({"run": str(run.run_dir), "step": run.step})
    subset = f"_n{card['n']}" if n is not None else ""
    path = run.run_dir / "eval" / f"likelihood_step_{run.step:09d}_k{k}{subset}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(card, indent=2))
    card["card_path"] = str(path)
    return card


def likelihood(run, k: int = 5000, n: int | None = None, seed: int = 0, log=print) -> dict:
    """Test ELBO and negative log-likelihood of a Bernoulli VAE on binarised test images, in nats.

    The test split is binarised once (pixel ~ Bernoulli(grey level), seed BINARIZE_SEED), as in
    the dynamically binarised MNIST benchmark. Per image, k samples z_i ~ q(z|x) give importance
    weights w_i = p(x|z_i) p(z_i) / q(z_i|x): log p(x) ~= logsumexp(log w) - log k and
    ELBO ~= mean(log w). Reported: means over images with their standard errors.
    """
    from ganforge.losses.vae import importance_sampled_log_likelihood

    require_autoencoder(run)
    if not run.method.variational:
        raise GanforgeError("likelihood needs a VAE (method.name=vae); an autoencoder defines no p(x)")
    if run.method.decoder.likelihood != "bernoulli":
        raise GanforgeError("the test-likelihood benchmark is defined for Bernoulli decoders on binarised images; "
                            "this run uses model.likelihood=gaussian")
    if k < 1:
        raise GanforgeError(f"k must be at least 1, got {k}")
    x, _ = load_split(run, "test")
    if n is not None:
        x = x[:n]
    target = torch.bernoulli((x + 1) / 2, generator=torch.Generator().manual_seed(BINARIZE_SEED))
    torch.manual_seed(seed)
    E, G = run.method.encoder, run.method.decoder
    t0 = time.perf_counter()
    log_px, elbo = [], []
    every = max(1, len(target) // 10)
    for i in range(len(target)):
        lp, el = importance_sampled_log_likelihood(E, G, target[i:i + 1].to(run.device),
                                                   (target[i:i + 1] * 2 - 1).to(run.device), k)
        log_px.append(float(lp))
        elbo.append(float(el))
        if (i + 1) % every == 0:
            log(f"  {i + 1}/{len(target)} images, NLL so far {-sum(log_px) / len(log_px):.2f} nats "
                f"({time.perf_counter() - t0:.0f} s)")
    nll = torch.tensor([-v for v in log_px], dtype=torch.float64)
    neg_elbo = torch.tensor([-v for v in elbo], dtype=torch.float64)

    def se(v):
        return float(v.std() / math.sqrt(len(v))) if len(v) > 1 else float("nan")

    return {"nll": float(nll.mean()), "nll_se": se(nll), "neg_elbo": float(neg_elbo.mean()),
            "neg_elbo_se": se(neg_elbo), "k": k, "n": len(target), "seed": seed,
            "protocol": f"{run.config.data.source} test split binarised once (pixel ~ Bernoulli(grey), seed "
                        f"{BINARIZE_SEED}); log p(x) by importance sampling with k samples from q(z|x); nats",
            "time_s": round(time.perf_counter() - t0, 1)}
