"""k-means clusters of a dataset's samples: labels for data that has none (method selfcond).

Pictures are clustered on their pixels, area-averaged down to at most ``MAX_SIDE`` px a side
(MNIST's 28 x 28 stays as it is; a 64 x 64 RGB folder becomes 32 x 32 x 3 = 3,072 numbers);
2-D points on their coordinates. Lloyd's algorithm from a k-means++ start (Arthur & Vassilvitskii
2007), in float64 and seeded, so that the same data and seed give the same clusters on every
run, a resumed one included:

    assign:  y_i = argmin_k ||x_i - c_k||^2 = argmin_k (||c_k||^2 - 2 <x_i, c_k>)
    update:  c_k = mean of the x_i with y_i = k   (an emptied cluster keeps its centre)

stopping when no label changes or after ``iters`` rounds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: pictures are averaged down to at most this many pixels a side before clustering
MAX_SIDE = 32
#: rows of the data scored against the centres at a time (bounds the float64 copy)
_CHUNK = 8192


def cluster_features(x: torch.Tensor) -> torch.Tensor:
    """What k-means reads: float32 (N, D). Pictures uint8 (N, C, H, W) -> [0, 1] pixels,
    area-averaged so that the longer side is at most MAX_SIDE; points (N, 2) as they are."""
    if x.dtype != torch.uint8:
        return x.float().flatten(1)
    rows = []
    for start in range(0, len(x), _CHUNK):
        part = x[start:start + _CHUNK].float() / 255
        side = max(part.shape[-2:])
        if side > MAX_SIDE:
            factor = -(-side // MAX_SIDE)  # ceil: e.g. 64 -> 2, 100 -> 4
            part = F.avg_pool2d(part, factor, ceil_mode=True)
        rows.append(part.flatten(1))
    return torch.cat(rows)


def nearest(x: torch.Tensor, centres: torch.Tensor, x_sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(index of the nearest centre (N,), its squared distance (N,)) for x (N, D) and centres
    (K, D), both float64; ``x_sq`` (N,) the rows' squared norms (computed once by kmeans)."""
    c_sq = (centres * centres).sum(1)
    labels, dists = [], []
    for start in range(0, len(x), _CHUNK):
        part = x[start:start + _CHUNK]
        d = x_sq[start:start + _CHUNK, None] - 2 * part @ centres.T + c_sq  # (n, K) squared distances
        best, idx = d.min(1)
        labels.append(idx)
        dists.append(best.clamp_min(0))
    return torch.cat(labels), torch.cat(dists)


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator, x_sq: torch.Tensor) -> torch.Tensor:
    """k starting centres (k, D) float64 for x (N, D) float64: the first uniformly, each next one
    with probability proportional to its squared distance from the nearest centre chosen so far."""
    picks = [int(torch.randint(len(x), (1,), generator=generator))]
    closest = nearest(x, x[picks[0]][None], x_sq)[1]
    for _ in range(1, k):
        if float(closest.sum()) <= 0:  # fewer distinct samples than k: repeat one
            pick = int(torch.randint(len(x), (1,), generator=generator))
        else:
            pick = int(torch.multinomial(closest / closest.sum(), 1, generator=generator))
        picks.append(pick)
        closest = torch.minimum(closest, nearest(x, x[pick][None], x_sq)[1])
    return x[picks].clone()


def kmeans(x: torch.Tensor, k: int, *, seed: int = 0, iters: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """(centres (k, D) float32, labels (N,) int64) of k-means on the rows of x (N, D)."""
    if len(x) < k:
        raise ValueError(f"k-means with {k} clusters needs at least {k} samples, got {len(x)}")
    generator = torch.Generator().manual_seed(seed)
    x = x.double()
    x_sq = (x * x).sum(1)
    centres = kmeans_plus_plus(x, k, generator, x_sq)
    labels = nearest(x, centres, x_sq)[0]
    for _ in range(iters):
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
        new = nearest(x, centres, x_sq)[0]
        if torch.equal(new, labels):
            break
        labels = new
    return centres.float(), labels
