"""Health signals: cheap measurements of how the game is going, logged with every metrics row.

Two kinds:

* per-step tensors computed inside the loss functions with no device sync (the loop averages
  them over the log interval): discriminator accuracy on real and fake (:func:`d_accuracy`),
  the size of the gradient that reaches the generator's output through D
  (:func:`probe_output_gradient`), and for translation how well outputs follow their targets
  (:func:`target_correlation`);
* a sample probe run by the loop at log steps (:class:`SampleProbe`): the diversity of a fixed
  batch of generated samples relative to real data, the class histogram when a classifier for
  the data exists, and the modes reached for 2-D mixtures.
"""

from __future__ import annotations

import torch

from ganforge.data import Dataset


def d_accuracy(threshold: float | None, real_out: torch.Tensor, fake_out: torch.Tensor) -> dict[str, torch.Tensor]:
    """Fraction of real samples D calls real (raw output > threshold) and of fakes it calls fake.

    The threshold is the game's (losses.gan.Game.threshold): logit 0, i.e. D(x) = 0.5, for the
    cross-entropy games, 0 for hinge, the midpoint of the targets 0 and 1 for least squares. The
    Wasserstein critic has none (None), so it gets no accuracy.
    """
    if threshold is None:
        return {}
    return {"D_acc_real": (real_out.detach() > threshold).float().mean(),
            "D_acc_fake": (fake_out.detach() <= threshold).float().mean()}


def target_correlation(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between a translator's outputs and their targets (both (B, C, H, W)),
    over all pixels, each channel centred on its own batch mean: near 1 when the output follows
    the target's light and dark, negative when its colours come out inverted."""
    dims = (0, 2, 3)
    o = output.detach().float() - output.detach().float().mean(dims, keepdim=True)
    t = target.detach().float() - target.detach().float().mean(dims, keepdim=True)
    return (o * t).sum() / ((o.square().sum() * t.square().sum()).sqrt() + 1e-12)


def probe_output_gradient(x: torch.Tensor) -> torch.Tensor:
    """A scalar that, after ``backward()``, holds mean_i ||dl_i / dx_i||: the gradient of the
    per-sample generator loss l_i at the generator's output x_i (x: (B, ...)).

    This is the signal that reaches G through D. With the saturating loss log(1 - D(G(z))) it is
    D(G(z)) * ||dlogit/dx||, which vanishes when D confidently rejects the fakes. The batch loss
    is the mean of l_i, so each sample's gradient is B times what autograd delivers.
    """
    buffer = torch.zeros((), device=x.device)
    if x.requires_grad:
        def record(grad: torch.Tensor) -> None:  # returns None: the gradient passes unchanged
            buffer.copy_(grad.detach().float().flatten(1).norm(dim=1).mean() * len(grad))

        x.register_hook(record)
    return buffer


class SampleProbe:
    """Measures a fixed batch of generated samples at log steps.

    diversity: mean pairwise distance of generated samples divided by that of a real batch of
    the same size, in the features of the dataset's classifier when one is trained (else in
    pixels, or in the plane for 2-D points); about 1 for a healthy generator, near 0 when all
    samples look alike. classes_seen / top_class: the classifier's class histogram (number of
    classes among the samples, largest class share). modes: the 2-D mixture modes reached by
    high-quality samples.
    """

    def __init__(self, dataset: Dataset, n: int, log=print):
        self.dataset, self.n = dataset, n
        self.extractor = None
        if dataset.is_image:
            from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor

            source = dataset.info.get("source")
            if source in DEFAULT_FOR_DATASET and DEFAULT_FOR_DATASET[source] != "inception":
                # The shipped network: always there (a damaged install is an error, not a quiet
                # switch to pixel distances, which would change what the diversity numbers mean).
                self.extractor = load_extractor(DEFAULT_FOR_DATASET[source])
                if tuple(dataset.sample_shape) != self.extractor.spec.input_shape:
                    self.extractor = None  # e.g. MNIST resized to 32x32: pixels, not a resized guess
        pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(12345))[:n]
        real = dataset.x[pick].cpu()
        real = real.float() / 127.5 - 1 if real.dtype == torch.uint8 else real.float()  # images: [-1, 1]
        self.real_spread = float(mean_pairwise_distance(self._features(real)[0]))

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.extractor is not None:
            return self.extractor.run(x)
        return x.flatten(1).float(), None

    @torch.no_grad()
    def __call__(self, fake: torch.Tensor) -> dict[str, float]:
        """The probe's numbers for ``fake``: the same fixed batch of generated samples each time
        (the caller draws them from fixed inputs, without the EMA)."""
        if not torch.isfinite(fake).all():
            return {"health/diversity": float("nan")}
        feats, probs = self._features(fake)
        out = {"health/diversity": round(float(mean_pairwise_distance(feats)) / max(self.real_spread, 1e-12), 4)}
        if probs is not None:
            hist = torch.bincount(probs.argmax(1), minlength=probs.shape[1])
            out["health/classes_seen"] = int((hist > 0).sum())
            out["health/top_class"] = round(float(hist.max()) / len(fake), 4)
        if "means" in self.dataset.info:
            from ganforge.metrics.toy2d import mode_statistics

            stats = mode_statistics(fake, torch.tensor(self.dataset.info["means"]),
                                    torch.tensor(self.dataset.info["stds"]))
            out["health/modes"] = stats["modes"]
        return out


def mean_pairwise_distance(x: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance over all pairs i != j of the rows of x (N, D)."""
    d = torch.cdist(x.double(), x.double())
    n = len(x)
    return d.sum() / max(n * (n - 1), 1)
