"""Plots saved with a run: loss curves, D outputs, and the 2-D picture of both players."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ganforge.report.images import picture_path  # noqa: E402
from ganforge.train.metrics_log import parse_rows  # noqa: E402


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return parse_rows(path.read_text(errors="replace"))


def plot_training_curves(rows: list[dict], path: Path) -> Path | None:
    """Losses (top) and mean D(x), D(G(z)) (bottom) against thousands of images seen."""
    evals = [r for r in rows if "eval/fid" in r or "eval/modes" in r]
    if any("loss/AE" in r for r in rows):
        return plot_autoencoder_curves([r for r in rows if "loss/AE" in r], path)
    rows = [r for r in rows if "loss/D" in r]
    if not rows:
        return None
    kimg = [r["kimg"] for r in rows]
    fig, axes = plt.subplots(3 if evals else 2, 1, figsize=(7, 8.5 if evals else 6), sharex=True)
    ax1, ax2 = axes[0], axes[1]
    for key, label in (("loss/D", "discriminator loss L_D"), ("loss/G", "generator loss L_G")):
        ax1.plot(kimg, [r.get(key) for r in rows], label=label)
    ax1.set_ylabel("loss (nats)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    if "D_x" in rows[-1]:  # cross-entropy games: D outputs probabilities
        for key, label in (("D_x", "mean D(x), real"), ("D_G_z", "mean D(G(z)), fake")):
            ax2.plot(kimg, [r.get(key, float("nan")) for r in rows], label=label)
        ax2.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax2.set_ylim(0, 1)
    else:  # hinge, least squares, Wasserstein: raw critic outputs
        for key, label in (("D_out_real", "mean D(x), real"), ("D_out_fake", "mean D(G(z)), fake")):
            ax2.plot(kimg, [r.get(key, float("nan")) for r in rows], label=label)
    ax2.set_ylabel("discriminator output")
    ax2.legend()
    ax2.grid(alpha=0.3)
    if evals:
        key, label = ("eval/fid", "FID (ganforge classifier features)") if "eval/fid" in evals[0] else (
            "eval/modes", "modes captured")
        axes[2].plot([r["kimg"] for r in evals], [r[key] for r in evals], marker="o", color="tab:green")
        axes[2].set_ylabel(label)
        axes[2].grid(alpha=0.3)
    axes[-1].set_xlabel("thousands of real images seen (kimg)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_autoencoder_curves(rows: list[dict], path: Path) -> Path:
    """Reconstruction term, KL and negative ELBO (nats per image) against kimg; for a VQ-VAE, its
    reconstruction MSE and commitment term."""
    kimg = [r["kimg"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    vq = "recon_mse" in rows[-1]
    terms = ((("recon_mse", "reconstruction MSE"), ("commitment", "commitment |z_e - sg(z_q)|^2")) if vq else
             (("neg_elbo", "-ELBO (KL weight 1)"), ("recon", "reconstruction -log p(x|z)"),
              ("kl", "KL(q(z|x) || p(z))"), ("perceptual", "perceptual term")))
    for key, label in terms:
        if key in rows[-1]:
            ax.plot(kimg, [r.get(key) for r in rows], label=label)
    ax.set_ylabel("mean squared error ([-1, 1] units)" if vq else "nats per image")
    ax.set_xlabel("thousands of real images seen (kimg)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@torch.no_grad()
def plot_2d(real: torch.Tensor, fake: torch.Tensor, discriminator, path: Path,
            title: str = "", device: str | torch.device = "cpu", probabilistic: bool = True) -> Path:
    """Real (blue) and generated (orange) points over D's output as a heat map: the probability of
    'real' for cross-entropy games, the raw critic value for hinge, least-squares and Wasserstein."""
    path = picture_path(path)
    pts = torch.cat([real, fake]).float()
    lo, hi = pts.min(0).values, pts.max(0).values
    margin = (hi - lo) * 0.15 + 0.1
    lo, hi = lo - margin, hi + margin
    n = 200
    xs, ys = torch.linspace(lo[0], hi[0], n), torch.linspace(lo[1], hi[1], n)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    fig, ax = plt.subplots(figsize=(6, 5.4))
    # A conditional D needs a label for every point: no single surface to draw, points only.
    if discriminator is not None and not getattr(discriminator, "n_classes", 0):
        was_training = discriminator.training
        discriminator.eval()
        out = discriminator(grid.to(device)).float().cpu().view(n, n)
        surface = (torch.sigmoid(out) if probabilistic else out).numpy()
        discriminator.train(was_training)
    else:
        surface = None
    gx, gy, real, fake = gx.numpy(), gy.numpy(), real.cpu().numpy(), fake.cpu().numpy()
    if surface is not None and probabilistic:
        mesh = ax.pcolormesh(gx, gy, surface, cmap="RdBu_r", vmin=0, vmax=1, shading="auto")
        fig.colorbar(mesh, ax=ax, label="D(x): probability of 'real'")
    elif surface is not None:
        mesh = ax.pcolormesh(gx, gy, surface, cmap="RdBu_r", shading="auto")
        fig.colorbar(mesh, ax=ax, label="critic output D(x) (higher = more real)")
    ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:blue", alpha=0.5, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:orange", alpha=0.5, label="generated")
    ax.legend(loc="upper right", markerscale=4)
    ax.set_title(title)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_disturbance_check(results: list[dict], path: Path) -> Path:
    """FID against disturbance strength: one panel per disturbance, one line per feature network
    (the output of evaluation.check_extractor for each network)."""
    kinds = list(results[0]["curves"])
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 3.2))
    for ax, kind in zip(axes, kinds, strict=True):
        for r in results:
            c = r["curves"][kind]
            ax.plot(c["levels"], c["fid"], marker="o", ms=3,
                    label=f"{r['extractor']['name']}" + ("" if c["monotonic"] else " (NOT monotonic)"))
        ax.set_title(kind)
        ax.set_xlabel(results[0]["curves"][kind]["unit"], fontsize=8)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("FID to the train split (log scale)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Disturbed held-out images: FID must rise with the disturbance", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
