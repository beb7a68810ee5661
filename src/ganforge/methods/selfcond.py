"""Method "selfcond": a conditional GAN on clusters of the data instead of labels (the
self-conditioned GAN of Liu et al. 2020, with the clusters found once, before training).

Before the first step the training samples are split into K clusters by k-means
(data.clusters: pictures on their pixels, points on their coordinates), and every sample's
cluster plays the part of a class label: G(z, y) and a projection discriminator D(x, y), exactly
the networks and games of cgan, with fake labels y drawn in the clusters' proportions (the
weights are a buffer of G, so samples later come in the same proportions). No dataset label is
read, so the method trains on unlabelled pictures too.

Why it helps: an unconditional G maps one connected latent space onto the data, and where the data
has separate modes (eight points of a ring, ten digits) it must bend across the gaps between
them and draws blends there. Conditioned on a cluster, G only has to cover that cluster, which
lies inside one mode when K is larger than the number of modes (Liu et al. use K = 50 on the 2-D
mixtures and 100 on MNIST). Liu et al. recluster on D's features during training; ganforge
clusters once, which keeps the labels fixed and a resumed run exact.

A cluster is not a class: evaluation maps each cluster to the class the classifier reads most
often and reports that purity, as for InfoGAN's codes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ganforge.config import _opt
from ganforge.data import Dataset
from ganforge.data.clusters import cluster_features, kmeans
from ganforge.errors import GanforgeError
from ganforge.methods.gan import (
    GAN_MODEL_KEYS,
    CGANOptions,
    ConditionalGANMethod,
    GANMethod,
    base_networks_for_embedding,
)
from ganforge.models.conditional import ConditionalDiscriminator, WeightedConditionalGenerator


@dataclass
class SelfCondOptions(CGANOptions):
    name: str = _opt("selfcond", "training method")
    clusters: int = _opt(50, "K, the number of k-means clusters of the training data that G and D are "
                         "conditioned on (more than the data's modes: Liu et al. use 50 on the 2-D rings and "
                         "grids, 100 on MNIST)", min=2, max=1000)
    cluster_iters: int = _opt(20, "at most this many rounds of k-means (it stops earlier when no label changes)",
                              min=1, max=1000)


class SelfCondMethod(ConditionalGANMethod):
    """G(z, y) against D(x, y), y the k-means cluster of each training sample."""

    Options = SelfCondOptions
    model_keys = GAN_MODEL_KEYS + ("embed_dim", "cond_d")
    preview_caption = "the same fixed noise at every step, one row per cluster (the first ten)"
    labels_are_classes = False
    label_word = "cluster"
    label_about = "the k-means cluster of the training data that a picture belongs to (not a dataset class)"

    def build_networks(self, model_cfg, data):
        k = self.options.clusters
        G, D = base_networks_for_embedding(model_cfg, data)
        return (WeightedConditionalGenerator(G, model_cfg.z_dim, k, model_cfg.embed_dim),
                ConditionalDiscriminator(D, k, model_cfg.cond_d))

    def prepare_data(self, dataset: Dataset, log=print) -> Dataset:
        """The data with its labels replaced by k-means clusters (seeded by train.seed, so a
        resumed run finds the same ones); sets G's label weights to the clusters' shares."""
        k = self.options.clusters
        if len(dataset) < k:
            raise GanforgeError(f"method.clusters={k} needs at least {k} training samples; "
                                f"{dataset.name} has {len(dataset)}: lower method.clusters")
        started = time.perf_counter()
        _, labels = kmeans(cluster_features(dataset.x), k, seed=self.cfg.train.seed,
                           iters=self.options.cluster_iters)
        counts = torch.bincount(labels, minlength=k)
        for net in self.networks().values():
            if hasattr(net, "label_weights"):
                net.label_weights.copy_(counts.to(net.label_weights) / len(labels))
        log(f"k-means: {k} clusters of {len(labels)} samples in {time.perf_counter() - started:.1f} s "
            f"(sizes {int(counts.min())}-{int(counts.max())}{', some empty' if (counts == 0).any() else ''})")
        info = {**dataset.info, "n_classes": k, "class_names": [f"cluster {i}" for i in range(k)],
                "labels": f"k-means clusters (method.clusters={k}, seed {self.cfg.train.seed})"}
        return Dataset(dataset.name, dataset.x, labels, info, dataset.extra)

    def inputs_for_latents(self, z, label=None):
        """{"z", "y"}: all cluster ``label``, or the clusters in their training proportions
        (y_i the cluster whose share of the cumulative weights holds (i + 1/2) / n)."""
        self.check_label(label)
        n = len(z)
        if label is not None:
            return {"z": z, "y": torch.full((n,), label)}
        cumulative = self.models["G"].label_weights.detach().double().cpu().cumsum(0)
        points = (torch.arange(n, dtype=torch.float64) + 0.5) / n * cumulative[-1]
        return {"z": z, "y": torch.searchsorted(cumulative, points).clamp_max(self.n_classes - 1)}

    def preview_inputs(self, dataset, seed, n):
        """Pictures: one row per cluster (the first ten); points: ``n`` samples over every cluster
        in its proportion, so the 2-D plots show all the modes G draws."""
        if not dataset.is_image:
            return self.sampling_inputs(n, torch.Generator().manual_seed(seed)), 8
        return super().preview_inputs(dataset, seed, n)

    def objective(self) -> str:
        return f"{GANMethod.objective(self)}, conditioned on {self.options.clusters} k-means clusters"
