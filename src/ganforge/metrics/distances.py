"""Sample-quality metrics as small functions over feature matrices.

All inputs are (N, D) feature matrices: ``real`` from the reference set, ``fake`` from the
generator. Everything is computed in float64. Each function checks its inputs and raises a
one-line :class:`GanforgeError` for too few samples or non-finite features.

- FID (Heusel et al. 2017): ||mu_r - mu_f||^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2)).
- KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel k(x, y) = (x.y / D + 1)^3, averaged
  over random subsets.
- Precision and recall (Kynkaanniemi et al. 2019): the k-NN balls of one set approximate its
  manifold; precision = share of fakes inside the real manifold, recall = share of reals inside
  the fake manifold.
- Density and coverage (Naeem et al. 2020): density counts how many real k-NN balls hold each
  fake (1 on average when the distributions match); coverage = share of reals whose k-NN ball
  holds at least one fake.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ganforge.errors import GanforgeError


def _check(name: str, x, min_n: int) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).double()
    if x.ndim != 2:
        raise GanforgeError(f"{name} features must be an (N, D) matrix, got shape {tuple(x.shape)}")
    if len(x) < min_n:
        raise GanforgeError(f"{name} has {len(x)} samples but this metric needs at least {min_n}; "
                            "draw more samples (-n)")
    if not torch.isfinite(x).all():
        raise GanforgeError(f"{name} features contain NaN or infinity; the generator or the feature "
                            "network produced non-finite values")
    return x


def gaussian_stats(features) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, float64."""
    x = _check("features", features, 2)
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (len(x) - 1)


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition."""
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2, sqrt_sigma1: torch.Tensor | None = None) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    tr((S1 S2)^(1/2)) is computed as tr((A S2 A)^(1/2)) with A = S1^(1/2): A S2 A is symmetric
    PSD and has the same eigenvalues as S1 S2, so no complex square roots appear (the source of
    the NaNs and tiny imaginary parts that scipy.linalg.sqrtm gives on near-singular inputs).
    ``sqrt_sigma1``: A when the caller has it already (the bootstrap compares many fake sets with
    one real set; the result is the same to the bit).
    """
    mu1, mu2 = torch.as_tensor(mu1).double(), torch.as_tensor(mu2).double()
    s1, s2 = torch.as_tensor(sigma1).double(), torch.as_tensor(sigma2).double()
    a = _sqrtm_psd(s1) if sqrt_sigma1 is None else sqrt_sigma1
    a_s2_a = a @ s2 @ a
    eig = torch.linalg.eigvalsh((a_s2_a + a_s2_a.T) / 2).clamp(min=0)
    value = float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * eig.sqrt().sum())
    return max(value, 0.0)


def fid(real, fake) -> float:
    """FID between two feature sets (no bootstrap)."""
    return frechet_distance(*gaussian_stats(_check("real", real, 2)), *gaussian_stats(_check("fake", fake, 2)))


def fid_with_interval(real_stats: tuple, fake, n_boot: int = 50, seed: int = 0, level: float = 0.95) -> dict:
    """FID against precomputed real statistics, with a bootstrap interval over the fake samples.

    Resampling with replacement duplicates samples, which shrinks the fake covariance and inflates
    every bootstrap FID by a roughly constant bias (about +0.6 on 10k MNIST features). So the
    interval is the bootstrap distribution's spread around its median, centred on the full-sample
    value: [v - (median - q_lo), v + (q_hi - median)]. The bias is reported as ``bootstrap_bias``.
    """
    fake = _check("fake", fake, 2)
    root = _sqrtm_psd(torch.as_tensor(real_stats[1]).double())  # once: the real statistics never change
    value = frechet_distance(*real_stats, *gaussian_stats(fake), sqrt_sigma1=root)
    g = torch.Generator().manual_seed(seed)
    boots = []
    for _ in range(n_boot):
        idx = torch.randint(len(fake), (len(fake),), generator=g)
        boots.append(frechet_distance(*real_stats, *gaussian_stats(fake[idx]), sqrt_sigma1=root))
    lo, med, hi = np.percentile(boots, [50 * (1 - level), 50, 50 * (1 + level)])
    return {"value": value, "ci_low": float(max(0.0, value - (med - lo))), "ci_high": float(value + (hi - med)),
            "level": level, "n_boot": n_boot, "bootstrap_bias": float(np.mean(boots) - value)}


def kid(real, fake, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> dict:
    """Kernel inception distance: mean and std of the unbiased MMD^2 over random subsets.

    The kernel (x.y / D + 1)^3 assumes features of order one (as Inception's are); features are
    therefore divided by one scalar, the root-mean-square of the real features, before the kernel
    (a change of units recorded as ``feature_scale``; it leaves every other metric unchanged).
    """
    real, fake = _check("real", real, 2), _check("fake", fake, 2)
    scale = float(real.square().mean().sqrt()) or 1.0
    real, fake = real / scale, fake / scale
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n_subsets):
        x = real[torch.randperm(len(real), generator=g)[:m]]
        y = fake[torch.randperm(len(fake), generator=g)[:m]]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        mmd = ((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
               + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) - 2 * kxy.mean())
        values.append(float(mmd))
    return {"value": float(np.mean(values)), "std": float(np.std(values)), "n_subsets": n_subsets,
            "subset_size": m, "feature_scale": scale}


CHUNK = 1024  # rows per distance block: 1024 x 10k float32 = 40 MB


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row (computed in row blocks)."""
    return torch.cat([torch.cdist(block, x).kthvalue(k + 1, dim=1).values  # +1: the row itself
                      for block in x.split(CHUNK)])


def _inside_any(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """(P,) bool: does each point lie in at least one ball B(centre_j, radius_j)?"""
    return torch.cat([(torch.cdist(block, centres) <= radii[None, :]).any(1) for block in points.split(CHUNK)])


def precision_recall(real, fake, k: int = 3) -> dict:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds."""
    real, fake = _check("real", real, k + 1).float(), _check("fake", fake, k + 1).float()
    precision = _inside_any(fake, real, _knn_radii(real, k)).double().mean()
    recall = _inside_any(real, fake, _knn_radii(fake, k)).double().mean()
    return {"precision": float(precision), "recall": float(recall), "k": k}


def density_coverage(real, fake, k: int = 5) -> dict:
    """Density and coverage (Naeem et al. 2020)."""
    real, fake = _check("real", real, k + 1).float(), _check("fake", fake, 1).float()
    r_real = _knn_radii(real, k)
    hits, covered = 0.0, torch.zeros(len(real), dtype=torch.bool)
    for block in fake.split(CHUNK):
        inside = torch.cdist(block, real) <= r_real[None, :]  # (B, R)
        hits += float(inside.double().sum())
        covered |= inside.any(0)
    return {"density": hits / (k * len(fake)), "coverage": float(covered.double().mean()), "k": k}


def classifier_score(probs, splits: int = 10) -> dict:
    """Inception-Score-style exp(E_x KL(p(y|x) || p(y))) from class probabilities (N, C)."""
    p = _check("class probabilities", probs, max(2, splits))
    scores = []
    for chunk in p.chunk(splits):
        py = chunk.mean(0, keepdim=True)
        kl = (chunk * (chunk.clamp_min(1e-12).log() - py.clamp_min(1e-12).log())).sum(1).mean()
        scores.append(math.exp(float(kl)))
    return {"value": float(np.mean(scores)), "std": float(np.std(scores)), "splits": splits}


def class_histogram(labels, n_classes: int) -> dict:
    """How predicted classes spread: classes seen, and KL(histogram || uniform) in nats."""
    labels = torch.as_tensor(labels).long()
    if len(labels) < 1:
        raise GanforgeError("class histogram needs at least one sample")
    counts = torch.bincount(labels, minlength=n_classes).double()
    p = counts / counts.sum()
    nz = p > 0
    return {"classes_seen": int(nz.sum()), "classes_total": n_classes,
            "kl_uniform": float((p[nz] * (p[nz] * n_classes).log()).sum()), "histogram": counts.long().tolist()}


def code_purity(predicted, codes, n_codes: int, n_classes: int) -> dict:
    """How well an unsupervised code (InfoGAN's c) separates the classes a classifier reads.

    Each code k is mapped to the class read most often among its samples, m(k) = argmax_y
    #{i: c_i = k, y_i = y}; purity is the share of samples whose class is their code's,
    mean_i [y_i = m(c_i)] (the paper's "5 % error" on MNIST is purity 0.95). Codes may share a
    class; ``classes_covered`` counts the distinct m(k).
    """
    predicted, codes = torch.as_tensor(predicted).long(), torch.as_tensor(codes).long()
    if predicted.shape != codes.shape or predicted.ndim != 1 or len(codes) < 1:
        raise GanforgeError(f"code purity needs one class and one code per sample, got shapes "
                            f"{tuple(predicted.shape)} and {tuple(codes.shape)}")
    table = torch.zeros(n_codes, n_classes, dtype=torch.long)
    table.index_put_((codes, predicted), torch.ones_like(codes), accumulate=True)  # (codes, classes)
    mapping = table.argmax(1)
    return {"value": float(table.max(1).values.sum() / len(codes)), "n": int(len(codes)),
            "code_to_class": mapping.tolist(), "classes_covered": int(mapping[table.sum(1) > 0].unique().numel())}


def confident_share(probs, threshold: float = 0.9) -> float:
    """Share of samples whose most likely class has probability >= ``threshold`` under the
    feature network: how many samples it reads as a clear instance of some class."""
    p = torch.as_tensor(probs)
    if p.ndim != 2 or len(p) < 1:
        raise GanforgeError(f"class probabilities must be (N >= 1, classes), got shape {tuple(p.shape)}")
    return float((p.max(1).values >= threshold).double().mean())


def stacked_modes(digit_labels) -> dict:
    """Stacked-MNIST mode count: distinct 3-digit labels among the samples, and
    KL(label histogram || uniform over 1000) in nats (VEEGAN/PacGAN protocol).

    The KL splits exactly into where it comes from, since the uniform over 1000 is the product
    of three uniforms over 10: KL(p || U) = sum_c KL(p_c || U_10) + TC(p), with p_c the digit
    histogram of channel c and TC = sum_c H(p_c) - H(p) >= 0 the total correlation (the digits
    of one sample not drawn independently). ``kl_channels`` says how unevenly each channel
    draws the ten digits (``digit_shares``: each channel's share of each digit);
    ``total_correlation`` how far the combinations are from independent (it also holds the
    plug-in bias of 1000 bins, about 999 / 2n nats).
    """
    labels = torch.as_tensor(digit_labels).long()  # 100 * d_R + 10 * d_G + d_B
    h = class_histogram(labels, 1000)
    channels = [class_histogram(labels // place % 10, 10) for place in (100, 10, 1)]  # R, G, B
    kl_channels = [c["kl_uniform"] for c in channels]
    return {"modes": h["classes_seen"], "modes_total": 1000, "kl_uniform": h["kl_uniform"],
            "n": int(len(labels)), "kl_channels": kl_channels,
            "digit_shares": [[k / len(labels) for k in c["histogram"]] for c in channels],  # 3 x 10
            "total_correlation": h["kl_uniform"] - sum(kl_channels)}
