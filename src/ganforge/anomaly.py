"""Anomaly detection with autoencoders: train on normal images only, score how unlike them a new
image is, flag it above a threshold calibrated on held-out normal images.

Scores (higher = more anomalous), chosen with ``--score``:

* ``error``: the reconstruction error itself. ae: the mean squared error per pixel on the [0, 1]
  grey scale; vae: the negative ELBO at the posterior mean, -log p(x | z = mu) + KL(q(z|x) || p(z)),
  in nats (deterministic, so the same image always gets the same score).
* ``relative``: the squared reconstruction error per unit of ink,
  sum_i (x_hat_i - x_i)^2 / max(1, sum_i |x_i - b|), sums over every pixel and channel on the
  [0, 1] scale, b the normal images' median pixel value (the background: 0 for MNIST). A digit 1
  has little ink, so its absolute error stays small under any autoencoder; relative to its ink it
  is reconstructed badly.
* ``combined`` (the default): how far the image's code lies from the normal codes joined to the
  relative error, each standardised on held-out normal images so neither dominates,
  score = (log r - m_r) / s_r + (log d - m_d) / s_d, with r the relative error and
  d = (z - mu)^T Sigma^-1 (z - mu) the squared Mahalanobis distance of the code z (a VAE's
  posterior mean) under the Gaussian fitted to the training codes. No weight is tuned: m and s
  are the mean and standard deviation of the log scores of the held-out normal images.

Everything a score needs (background, code Gaussian, standardisation, threshold) is fitted on
normal images only and saved in the run's anomaly.json, so ``score`` needs nothing else. The
threshold is the (1 - fpr) quantile of the held-out normal images' scores: about a fraction fpr
of new normal images will be flagged. The one-class protocol trains one model per class (normal =
that class of the train split) and measures AUROC on the whole test split, for every score.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ganforge.errors import GanforgeError

ANOMALY_FILE = "anomaly.json"
SCORES = ("combined", "relative", "error")
DEFAULT_SCORE = "combined"
_LOG_FLOOR = 1e-12  # scores are standardised in log space; an exact 0 would be -inf


@torch.no_grad()
def reconstruct_and_encode(run, images: torch.Tensor, batch: int = 1000) -> dict[str, torch.Tensor]:
    """One pass of the autoencoder over ``images`` (N, C, H, W) in [-1, 1]:
    ``error`` (N,) the plain error score, ``recon`` (N, C, H, W) in [-1, 1], ``codes`` (N, z_dim)."""
    from ganforge.autoencoding import check_shape, require_autoencoder
    from ganforge.losses.vae import gaussian_kl, log_likelihood, split_posterior
    from ganforge.methods.autoencoder import likelihood_target

    require_autoencoder(run)
    check_shape(run, images)
    E, G = run.method.encoder, run.method.decoder
    errors, recons, codes = [], [], []
    for chunk in images.split(batch):
        x = chunk.to(run.device)
        h = E(x)
        if run.method.variational:
            z, logvar = split_posterior(h)
            target = likelihood_target(G, x, binarize=False)
            s = -log_likelihood(G, G.params(z).float(), target.float()) + gaussian_kl(z.float(), logvar.float())
            recon = G(z).float()
        else:
            z, recon = h, G(h).float()
            s = ((recon - x) / 2).pow(2).flatten(1).mean(1)
        errors.append(s.float().cpu())
        recons.append(recon.cpu())
        codes.append(z.float().cpu())
    return {"error": torch.cat(errors), "recon": torch.cat(recons), "codes": torch.cat(codes)}


def relative_error(images: torch.Tensor, recon: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Squared reconstruction error per unit of ink, (N,): sum (x_hat - x)^2 / max(1, sum |x - b|),
    on the [0, 1] scale; ``background`` b holds one value per channel (C,)."""
    x01, r01 = (images + 1) / 2, (recon + 1) / 2
    ink = (x01 - background.view(1, -1, 1, 1)).abs().flatten(1).sum(1).clamp_min(1.0)
    return (r01 - x01).pow(2).flatten(1).sum(1) / ink


def fit_code_gaussian(codes: torch.Tensor) -> dict:
    """Mean and precision (inverse covariance) of codes (N, z_dim), as JSON-ready lists. A ridge of
    1e-6 of the mean variance keeps the covariance invertible when a code dimension is unused."""
    if len(codes) < 2:
        raise GanforgeError("fitting the normal codes needs at least 2 normal training images; give more")
    codes = codes.double()
    cov = torch.cov(codes.T).reshape(codes.shape[1], codes.shape[1])
    cov = cov + (1e-6 * cov.diagonal().mean() + 1e-12) * torch.eye(codes.shape[1], dtype=torch.float64)
    return {"mean": codes.mean(0).tolist(), "precision": torch.linalg.inv(cov).tolist()}


def mahalanobis_sq(codes: torch.Tensor, gaussian: dict) -> torch.Tensor:
    """(z - mu)^T P (z - mu) for every code, (N,)."""
    d = codes.double() - torch.tensor(gaussian["mean"], dtype=torch.float64)
    return ((d @ torch.tensor(gaussian["precision"], dtype=torch.float64)) * d).sum(1).float()


def log_standardise(values: torch.Tensor, stats: list[float]) -> torch.Tensor:
    """(log v - m) / s for stats = [m, s] (the mean and standard deviation of log v on normal images)."""
    return (values.double().clamp_min(_LOG_FLOOR).log() - stats[0]) / stats[1]


def log_stats(values: torch.Tensor) -> list[float]:
    logs = values.double().clamp_min(_LOG_FLOOR).log()
    return [float(logs.mean()), max(float(logs.std()), 1e-12)]


def scores_of(run, images: torch.Tensor, record: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Every score the calibration ``record`` supports, {name: (N,)}, with the reconstructions
    (N, C, H, W) in [-1, 1] and the per-pixel squared error maps (N, H, W) on the [0, 1] scale.
    A record written before scores had names (no "kind") supports ``error`` only."""
    return scores_from(reconstruct_and_encode(run, images), images, record)


def scores_from(out: dict[str, torch.Tensor], images: torch.Tensor, record: dict):
    """:func:`scores_of` from a pass of :func:`reconstruct_and_encode` over ``images``."""
    scores = {"error": out["error"]}
    if "background" in record:
        scores = _every_score(out, *_relative_and_distance(out, images, record), record["standardise"])
    maps = ((out["recon"] - images) / 2).pow(2).mean(1)
    return scores, out["recon"], maps


def _relative_and_distance(out: dict[str, torch.Tensor], images: torch.Tensor,
                           record: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The relative error and the squared code distance of a pass over ``images``, (N,) each."""
    return (relative_error(images, out["recon"], torch.tensor(record["background"])),
            mahalanobis_sq(out["codes"], record["code_gaussian"]))


def _every_score(out: dict[str, torch.Tensor], rel: torch.Tensor, dist: torch.Tensor,
                 standardise: dict) -> dict[str, torch.Tensor]:
    """Each named score, (N,) each, from a pass's error, relative error and squared code distance."""
    combined = log_standardise(rel, standardise["relative"]) + log_standardise(dist, standardise["code_distance"])
    return {"error": out["error"], "relative": rel, "combined": combined.float()}


def saved_calibration(run) -> dict:
    """The run's anomaly.json, or {} when it has none yet."""
    path = run.run_dir / ANOMALY_FILE if run.run_dir is not None else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else {}


def score_images(run, images: torch.Tensor, record: dict | None = None) -> tuple[torch.Tensor, torch.Tensor,
                                                                                   torch.Tensor]:
    """(scores (N,), reconstructions (N, C, H, W) in [-1, 1], per-pixel squared error maps (N, H, W)):
    the score the run's calibration names (anomaly.json, or ``record``), or the plain error score
    when the run has no calibration yet."""
    if record is None:
        record = saved_calibration(run)
    scores, recon, maps = scores_of(run, images, record)
    return scores[record.get("kind", "error")], recon, maps


def score_description(run, kind: str) -> str:
    if kind == "relative":
        return "squared reconstruction error per unit of ink ([0, 1] scale)"
    if kind == "combined":
        return "relative error + code distance, each standardised on held-out normal images"
    return "negative ELBO at the posterior mean (nats)" if run.method.variational else \
        "mean squared reconstruction error per pixel ([0, 1] scale)"


def check_score(kind: str) -> None:
    if kind not in SCORES:
        raise GanforgeError(f"unknown anomaly score {kind!r}; choose one of {', '.join(SCORES)}")


def calibrate(run, normal_train: torch.Tensor, normal_held: torch.Tensor, fpr: float,
              kind: str = DEFAULT_SCORE) -> dict:
    """Fit what the scores need on normal images and set the threshold at false-positive rate
    ``fpr``; saved in the run. ``normal_train``: the images the model trained on (the background
    and the Gaussian of their codes); ``normal_held``: held-out normal images (the
    standardisation of each score and the threshold), both (N, C, H, W) in [-1, 1]."""
    check_fpr(fpr)
    check_score(kind)
    if len(normal_held) < 2:
        raise GanforgeError(f"the held-out normal set has {len(normal_held)} image(s); calibration needs at least "
                            "2: raise data.holdout (e.g. 0.1) or give more normal images")
    # The background: each channel's median over (at most) the first 1,000 training images.
    x01 = (normal_train[:1000] + 1) / 2
    background = x01.transpose(0, 1).reshape(x01.shape[1], -1).median(1).values
    record = {"kind": kind, "score": score_description(run, kind), "background": background.tolist(),
              "code_gaussian": fit_code_gaussian(reconstruct_and_encode(run, normal_train)["codes"])}
    held = reconstruct_and_encode(run, normal_held)
    rel, dist = _relative_and_distance(held, normal_held, record)
    record["standardise"] = {"relative": log_stats(rel), "code_distance": log_stats(dist)}
    scores = _every_score(held, rel, dist, record["standardise"])[kind]
    threshold = float(torch.quantile(scores.double(), 1 - fpr))
    record.update({"threshold": threshold, "fpr": fpr, "n_calibration": len(scores),
                   "calibration_scores": {"mean": float(scores.mean()), "median": float(scores.median()),
                                          "max": float(scores.max())},
                   "measured_fpr": float((scores > threshold).double().mean()),
                   "normal": {"source": run.config.data.source, "classes": list(run.config.data.classes),
                              "path": run.config.data.path}})
    (run.run_dir / ANOMALY_FILE).write_text(json.dumps(record, indent=2))
    return record


def normal_images(cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """(training part, held-out part) of the normal images ``cfg.data`` selects, in [-1, 1]."""
    from ganforge.data import load_dataset

    parts = (load_dataset(cfg.data, log=lambda *_: None, part=part) for part in ("train", "holdout"))
    return tuple(ds.x.float() / 127.5 - 1 for ds in parts)


def check_fpr(fpr: float) -> None:
    if not 0 < fpr < 1:
        raise GanforgeError(f"the false-positive rate must be between 0 and 1 (exclusive), e.g. 0.05; got {fpr}")


def fit(cfg, out: Path, fpr: float = 0.05, *, kind: str = DEFAULT_SCORE, overwrite: bool = False,
        progress: bool = True, log=print) -> dict:
    """Train ``cfg`` (its data restricted to the normal images) and calibrate the score ``kind``
    on the held-out part of the normal images (data.holdout, 10 % unless set)."""
    import dataclasses

    from ganforge import api

    check_fpr(fpr)
    check_score(kind)
    if cfg.method.name not in ("ae", "vae"):
        raise GanforgeError(f"anomaly detection trains an autoencoder; method.name is {cfg.method.name} (use a preset "
                            "such as ae-mnist or vae-mnist)")
    if cfg.data.holdout == 0:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, holdout=0.1))
    run_dir = api.train(cfg, out, overwrite=overwrite, progress=progress, log=log)
    run = api.load_run(run_dir)
    record = calibrate(run, *normal_images(run.config), fpr, kind)
    record["run"] = str(run_dir)
    record["n_train"] = run.info["dataset_size"]
    return record


def load_calibration(run) -> dict:
    record = saved_calibration(run)
    if not record:
        raise GanforgeError(f"{run.run_dir} has no anomaly threshold yet; train it with `ganforge anomaly fit` (or "
                            "calibrate with --fpr)")
    return record


def score_files(run, paths: list[Path], out_dir: Path | None, resize: bool = False) -> list[dict]:
    """Score image files against the run's calibrated threshold; write error maps to ``out_dir``."""
    from ganforge.autoencoding import image_files, read_images

    record = load_calibration(run)
    files = image_files(paths)
    images = read_images(files, run, resize=resize)
    scores, recon, maps = score_images(run, images, record)
    results = []
    for i, f in enumerate(files):
        item = {"file": str(f), "score": float(scores[i]), "anomaly": bool(scores[i] > record["threshold"])}
        if out_dir is not None:
            item["error_map"] = str(save_error_map(images[i], recon[i], maps[i], Path(out_dir) / f"{f.stem}_error.png"))
        results.append(item)
    return results


def save_error_map(image: torch.Tensor, recon: torch.Tensor, error: torch.Tensor, path: Path) -> Path:
    """original | reconstruction | per-pixel squared error (inferno colours, 0 to 1 fixed scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import colormaps

    from ganforge.report.images import save_png, to_uint8

    def rgb(x):
        a = to_uint8(x[None])[0].permute(1, 2, 0).numpy()
        return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a

    heat = (colormaps["inferno"](error.clamp(0, 1).numpy())[..., :3] * 255).astype(np.uint8)
    gap = np.full((image.shape[1], 2, 3), 255, dtype=np.uint8)
    return save_png(np.concatenate([rgb(image), gap, rgb(recon), gap, heat], axis=1), path,
                    scale=max(1, 112 // image.shape[-1]))


def one_class(preset: str, classes: list[int], out_root: Path, overrides: list[str] | None = None,
              fpr: float = 0.05, kind: str = DEFAULT_SCORE, progress: bool = False, log=print) -> dict:
    """The one-class protocol: per class c, train on class c of the train split (10 % held out to
    calibrate), score the whole test split, AUROC with the other classes as anomalies. ``kind``
    is the score thresholded and plotted; every score's AUROC is reported beside it."""
    from ganforge import api
    from ganforge.autoencoding import load_split
    from ganforge.config import load_config
    from ganforge.metrics.roc import auroc, roc_curve

    check_score(kind)
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    results, curves = [], {}
    for c in classes:
        cfg = load_config(preset, [*(overrides or []), f"data.classes=[{c}]", "data.holdout=0.1"])
        run_dir = out_root / f"class-{c}"
        log(f"class {c}: training {preset} on the normal class ...")
        record = fit(cfg, run_dir, fpr, kind=kind, overwrite=True, progress=progress, log=lambda *_: None)
        run = api.load_run(run_dir)
        x, y = load_split(run, "test")
        every, _, _ = scores_of(run, x, record)
        scores, anomalous = every[kind], y != c
        flagged = scores > record["threshold"]
        row = {"class": c, "auroc": auroc(scores, anomalous),
               "auroc_by_score": {name: auroc(v, anomalous) for name, v in every.items()},
               "n_train": json.loads((run_dir / "run.json").read_text())["dataset_size"],
               "threshold": record["threshold"],
               "test_fpr": float(flagged[~anomalous].double().mean()),
               "test_tpr": float(flagged[anomalous].double().mean())}
        results.append(row)
        curves[c] = roc_curve(scores, anomalous)
        others = ", ".join(f"{name} {100 * v:.1f}%" for name, v in row["auroc_by_score"].items() if name != kind)
        log(f"class {c}: AUROC {100 * row['auroc']:.1f}% ({others}); at the calibrated threshold "
            f"{100 * row['test_tpr']:.1f}% of anomalies caught, {100 * row['test_fpr']:.1f}% of normal test images "
            "flagged")
    mean = sum(r["auroc"] for r in results) / len(results)
    summary = {"preset": preset, "overrides": overrides or [], "kind": kind, "score": record["score"], "fpr": fpr,
               "classes": results, "mean_auroc": mean,
               "mean_auroc_by_score": {name: sum(r["auroc_by_score"][name] for r in results) / len(results)
                                       for name in SCORES},
               "protocol": "train on one class of the train split (90 %; 10 % calibrates the scores and the "
                           "threshold), test on the whole test split with every other class as anomalous"}
    (out_root / "one_class.json").write_text(json.dumps(summary, indent=2))
    summary["roc_plot"] = str(plot_rocs(curves, {r["class"]: r["auroc"] for r in results}, out_root / "roc.png",
                                        f"one-class {run.config.data.source}, {preset}, {kind} score: mean AUROC "
                                        f"{100 * mean:.1f}%"))
    return summary


def plot_rocs(curves: dict, aucs: dict, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5.5))
    for c, (fpr, tpr) in curves.items():
        ax.plot(fpr.numpy(), tpr.numpy(), label=f"class {c}: {100 * aucs[c]:.1f}%", lw=1.2)
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
    ax.set_xlabel("false-positive rate (normal images flagged)")
    ax.set_ylabel("true-positive rate (anomalies caught)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
