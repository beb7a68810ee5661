"""Anomaly detection with autoencoders: train on normal images only, score by how badly a new
image is reconstructed, flag it above a threshold calibrated on held-out normal images.

Scores (higher = more anomalous):

* ae: mean squared reconstruction error per pixel, on the [0, 1] grey scale;
* vae: the negative ELBO at the posterior mean, -log p(x | z = mu) + KL(q(z|x) || p(z)), in
  nats (deterministic, so the same image always gets the same score).

The threshold is the (1 - fpr) quantile of the scores of held-out normal images: about a
fraction fpr of new normal images will be flagged. The one-class protocol trains one model per
class (normal = that class of the train split) and measures AUROC on the whole test split.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ganforge.errors import GanforgeError

ANOMALY_FILE = "anomaly.json"


@torch.no_grad()
def score_images(run, images: torch.Tensor, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(scores (N,), reconstructions (N, C, H, W) in [-1, 1], per-pixel squared error maps (N, H, W))."""
    from ganforge.autoencoding import check_shape, require_autoencoder
    from ganforge.losses.vae import gaussian_kl, log_likelihood, split_posterior
    from ganforge.methods.autoencoder import likelihood_target

    require_autoencoder(run)
    check_shape(run, images)
    E, G = run.method.encoder, run.method.decoder
    scores, recons = [], []
    for chunk in images.split(batch):
        x = chunk.to(run.device)
        h = E(x)
        if run.method.variational:
            mu, logvar = split_posterior(h)
            target = likelihood_target(G, x, binarize=False)
            s = -log_likelihood(G, G.params(mu).float(), target.float()) + gaussian_kl(mu.float(), logvar.float())
            recon = G(mu)
        else:
            recon = G(h)
            s = ((recon.float() - x) / 2).pow(2).flatten(1).mean(1)
        scores.append(s.float().cpu())
        recons.append(recon.float().cpu())
    recon = torch.cat(recons)
    maps = ((recon - images) / 2).pow(2).mean(1)
    return torch.cat(scores), recon, maps


def score_name(run) -> str:
    return "negative ELBO at the posterior mean (nats)" if run.method.variational else \
        "mean squared reconstruction error per pixel ([0, 1] scale)"


def calibrate(run, normal_images: torch.Tensor, fpr: float) -> dict:
    """The threshold at false-positive rate ``fpr`` on held-out normal images; saved in the run."""
    check_fpr(fpr)
    if len(normal_images) == 0:
        raise GanforgeError("the held-out normal set is empty; raise data.holdout (e.g. 0.1) or give more normal "
                            "images")
    scores, _, _ = score_images(run, normal_images)
    threshold = float(torch.quantile(scores.double(), 1 - fpr))
    record = {"score": score_name(run), "threshold": threshold, "fpr": fpr, "n_calibration": len(scores),
              "calibration_scores": {"mean": float(scores.mean()), "median": float(scores.median()),
                                     "max": float(scores.max())},
              "measured_fpr": float((scores > threshold).double().mean()),
              "normal": {"source": run.config.data.source, "classes": list(run.config.data.classes),
                         "path": run.config.data.path}}
    (run.run_dir / ANOMALY_FILE).write_text(json.dumps(record, indent=2))
    return record


def check_fpr(fpr: float) -> None:
    if not 0 < fpr < 1:
        raise GanforgeError(f"the false-positive rate must be between 0 and 1 (exclusive), e.g. 0.05; got {fpr}")


def fit(cfg, out: Path, fpr: float = 0.05, *, overwrite: bool = False, progress: bool = True, log=print) -> dict:
    """Train ``cfg`` (its data restricted to the normal images) and calibrate the threshold on
    the held-out part of the normal images (data.holdout, 10 % unless set)."""
    import dataclasses

    from ganforge import api
    from ganforge.data import load_dataset

    check_fpr(fpr)
    if cfg.method.name not in ("ae", "vae"):
        raise GanforgeError(f"anomaly detection trains an autoencoder; method.name is {cfg.method.name} (use a preset "
                            "such as ae-mnist or vae-mnist)")
    if cfg.data.holdout == 0:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, holdout=0.1))
    held = load_dataset(cfg.data, log=lambda *_: None, part="holdout")
    run_dir = api.train(cfg, out, overwrite=overwrite, progress=progress, log=log)
    run = api.load_run(run_dir)
    record = calibrate(run, held.x.float() / 127.5 - 1, fpr)
    record["run"] = str(run_dir)
    record["n_train"] = run.info["dataset_size"]
    return record


def load_calibration(run) -> dict:
    path = run.run_dir / ANOMALY_FILE
    if not path.is_file():
        raise GanforgeError(f"{run.run_dir} has no anomaly threshold yet; train it with `ganforge anomaly fit` (or "
                            "calibrate with --fpr)")
    return json.loads(path.read_text())


def score_files(run, paths: list[Path], out_dir: Path | None, resize: bool = False) -> list[dict]:
    """Score image files against the run's calibrated threshold; write error maps to ``out_dir``."""
    from ganforge.autoencoding import image_files, read_images

    record = load_calibration(run)
    files = image_files(paths)
    images = read_images(files, run, resize=resize)
    scores, recon, maps = score_images(run, images)
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
              fpr: float = 0.05, progress: bool = False, log=print) -> dict:
    """The one-class protocol: per class c, train on class c of the train split (10 % held out to
    calibrate), score the whole test split, AUROC with the other classes as anomalies."""
    from ganforge import api
    from ganforge.autoencoding import load_split
    from ganforge.config import load_config
    from ganforge.metrics.roc import auroc, roc_curve

    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    results, curves = [], {}
    for c in classes:
        cfg = load_config(preset, [*(overrides or []), f"data.classes=[{c}]", "data.holdout=0.1"])
        run_dir = out_root / f"class-{c}"
        log(f"class {c}: training {preset} on the normal class ...")
        record = fit(cfg, run_dir, fpr, overwrite=True, progress=progress, log=lambda *_: None)
        run = api.load_run(run_dir)
        x, y = load_split(run, "test")
        scores, _, _ = score_images(run, x)
        anomalous = y != c
        auc = auroc(scores, anomalous)
        flagged = scores > record["threshold"]
        row = {"class": c, "auroc": auc, "n_train": json.loads((run_dir / "run.json").read_text())["dataset_size"],
               "threshold": record["threshold"],
               "test_fpr": float(flagged[~anomalous].double().mean()),
               "test_tpr": float(flagged[anomalous].double().mean())}
        results.append(row)
        curves[c] = roc_curve(scores, anomalous)
        log(f"class {c}: AUROC {100 * auc:.1f}%  (at the calibrated threshold: {100 * row['test_tpr']:.1f}% of "
            f"anomalies caught, {100 * row['test_fpr']:.1f}% of normal test images flagged)")
    mean = sum(r["auroc"] for r in results) / len(results)
    summary = {"preset": preset, "overrides": overrides or [], "score": score_name(run), "fpr": fpr,
               "classes": results, "mean_auroc": mean,
               "protocol": "train on one class of the train split (90 %; 10 % calibrates the threshold), test on "
                           "the whole test split with every other class as anomalous"}
    (out_root / "one_class.json").write_text(json.dumps(summary, indent=2))
    summary["roc_plot"] = str(plot_rocs(curves, {r["class"]: r["auroc"] for r in results}, out_root / "roc.png",
                                        f"one-class {run.config.data.source}, {preset}: mean AUROC {100 * mean:.1f}%"))
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
