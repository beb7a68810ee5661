"""ROC curves and the area under them, for anomaly scores (higher score = more anomalous)."""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


def auroc(scores: torch.Tensor, is_anomaly: torch.Tensor) -> float:
    """P(score of a random anomaly > score of a random normal sample), ties counting 1/2.

    The Mann-Whitney form: with average ranks r over all N scores,
    AUROC = (sum of the anomalies' ranks - n_a (n_a + 1) / 2) / (n_a n_n).
    """
    scores, is_anomaly = scores.double().flatten(), is_anomaly.bool().flatten()
    n_a, n_n = int(is_anomaly.sum()), int((~is_anomaly).sum())
    if n_a == 0 or n_n == 0:
        raise GanforgeError("AUROC needs both normal and anomalous samples")
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    # Average the ranks of tied scores.
    uniq, inverse, counts = torch.unique(sorted_scores, return_inverse=True, return_counts=True)
    if len(uniq) < len(scores):
        first = torch.cumsum(counts, 0) - counts + 1
        avg = first + (counts - 1) / 2.0
        ranks[order] = avg[inverse].double()
    return float((ranks[is_anomaly].sum() - n_a * (n_a + 1) / 2) / (n_a * n_n))


def roc_curve(scores: torch.Tensor, is_anomaly: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(false-positive rates, true-positive rates) as the threshold sweeps from +inf down."""
    scores, is_anomaly = scores.double().flatten(), is_anomaly.bool().flatten()
    order = torch.argsort(scores, descending=True)
    hits = is_anomaly[order].double()
    tpr = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(hits, 0) / max(hits.sum(), 1)])
    fpr = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(1 - hits, 0) / max((1 - hits).sum(), 1)])
    return fpr, tpr
