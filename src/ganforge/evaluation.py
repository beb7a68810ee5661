"""Evaluating a run: 2-D mode statistics now; image metrics build on the same entry point."""

from __future__ import annotations

import torch

from ganforge.data import Dataset
from ganforge.metrics.toy2d import mode_statistics


def evaluate_points(samples: torch.Tensor, dataset: Dataset, seed: int = 0) -> dict:
    """Modes captured, high-quality fraction and reverse KL of generated 2-D ``samples`` (n, 2),
    drawn with ``seed`` (PacGAN protocol)."""
    means = torch.tensor(dataset.info["means"])
    stds = torch.tensor(dataset.info["stds"])
    return {**mode_statistics(samples, means, stds), "seed": seed,
            "protocol": "PacGAN 2-D: high quality = within 3 std of nearest mode; reverse KL over "
                        "high-quality samples vs uniform"}


# ---------------------------------------------------------------------------------------------
# Images: feature-based metrics with an evaluation card.

IMAGE_METRICS = ("fid", "kid", "pr", "dc", "score", "classes")
DEFAULT_IMAGE_METRICS = IMAGE_METRICS


def reference_features(extractor, dataset: str, split: str, log=print,
                       resolution: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and class probabilities of a whole dataset split, cached by (dataset, split,
    resolution, extractor sha256) so they are computed once per extractor version.

    ``resolution`` (0: native): the real images are first brought to the resolution a run trains
    at, then resized to the extractor's input like the run's samples, so both sides of a FID
    pass through the same resampling."""
    from safetensors.torch import load_file, save_file

    from ganforge.config import DataConfig
    from ganforge.data import load_dataset
    from ganforge.data.cache import cache_dir

    at = f"-r{resolution}" if resolution else ""
    path = cache_dir() / "refstats" / f"{dataset}-{split}{at}-{extractor.name}-{extractor.sha256[:16]}.safetensors"
    if path.exists():
        try:
            t = load_file(str(path))
            return t["features"], t["probs"]
        except Exception:
            path.unlink(missing_ok=True)  # unreadable: compute again below
    ds = load_dataset(DataConfig(source=dataset, split=split, resolution=resolution), log)
    feats, probs = extractor.run(fit_to(ds.x.float() / 127.5 - 1, extractor))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({"features": feats.contiguous(), "probs": probs.contiguous()}, str(tmp))
    tmp.replace(path)
    return feats, probs


def fit_to(images: torch.Tensor, extractor) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] as the extractor reads them (see :func:`resize_for`)."""
    shape = extractor.spec.input_shape
    return images if shape is None or tuple(images.shape[1:]) == shape else resize_for(images, shape)


def resize_for(images: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Explicit conversion to an extractor's input: luma for RGB -> grey, bilinear antialiased resize."""
    import torch.nn.functional as F

    c, h, w = shape
    if images.shape[1] == 3 and c == 1:
        images = (images * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif images.shape[1] == 1 and c == 3:
        images = images.expand(-1, 3, -1, -1)
    if images.shape[-2:] != (h, w):
        images = F.interpolate(images, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return images


KNN_MAX = 10_000  # k-NN metrics and KID compare at most this many samples per side (seeded subset)


#: a sample counts as "clear" when the feature network gives its top class at least this probability
CONFIDENT_P = 0.9


def image_metrics(real_feats, real_probs, fake_feats, fake_probs, metrics, seed: int = 0) -> dict:
    """Every requested metric over precomputed features (pure: no models, no files).

    FID uses every sample; KID, precision/recall and density/coverage use seeded random subsets
    of at most KNN_MAX per side (their cost is quadratic), recorded as ``n_real``/``n_fake``.
    """
    from ganforge.metrics import distances as dist

    g = torch.Generator().manual_seed(seed)
    sub_real = real_feats[torch.randperm(len(real_feats), generator=g)[:KNN_MAX]]
    sub_fake = fake_feats[torch.randperm(len(fake_feats), generator=g)[:KNN_MAX]]
    sizes = {"n_real": len(sub_real), "n_fake": len(sub_fake)}
    out = {}
    for name in metrics:
        if name == "fid":
            out["fid"] = {**dist.fid_with_interval(dist.gaussian_stats(real_feats), fake_feats, seed=seed),
                          "n_real": len(real_feats), "n_fake": len(fake_feats)}
        elif name == "kid":
            out["kid"] = {**dist.kid(sub_real, sub_fake, seed=seed), **sizes}
        elif name == "pr":
            out["pr"] = {**dist.precision_recall(sub_real, sub_fake), **sizes}
        elif name == "dc":
            out["dc"] = {**dist.density_coverage(sub_real, sub_fake), **sizes}
        elif name == "score":
            out["score"] = dist.classifier_score(fake_probs)
        elif name == "classes":
            out["classes"] = {**dist.class_histogram(fake_probs.argmax(1), fake_probs.shape[1]),
                              "confident": dist.confident_share(fake_probs, CONFIDENT_P), "confident_p": CONFIDENT_P}
    return out


def evaluate_images(run, metrics=DEFAULT_IMAGE_METRICS, n: int = 10000, ref_split: str = "test",
                    seed: int = 0, extractor: str | None = None, resize: bool = False, log=print,
                    truncation: float | None = None) -> dict:
    """Draw ``n`` samples from a run (with the truncation trick when ``truncation`` is given: psi
    in W for StyleGAN), compare them with a reference split, and return the card."""
    import time

    from ganforge.errors import GanforgeError, did_you_mean
    from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor

    t0 = time.perf_counter()
    unknown = [m for m in metrics if m not in IMAGE_METRICS]
    if unknown:
        raise GanforgeError(f"unknown metric '{unknown[0]}'{did_you_mean(unknown[0], IMAGE_METRICS)}; "
                            f"image metrics: {', '.join(IMAGE_METRICS)}")
    dataset = run.config.data.source
    if dataset == "stacked-mnist":
        return evaluate_stacked(run, n, seed, log)
    colour = run.info["sample_shape"][0] == 3
    name = extractor or DEFAULT_FOR_DATASET.get(dataset) or ("emoji-convnet" if colour else "mnist-lenet")
    fx = load_extractor(name, log=log)
    in_domain = dataset in fx.spec.domain
    fake = run.sample(n, seed=seed, truncation=truncation)
    resize_policy = "none"
    if fx.spec.input_shape is None:
        resize_policy = "bilinear to 299x299 inside the extractor; grey repeated to RGB (pytorch-fid convention)"
    elif tuple(fake.shape[1:]) != fx.spec.input_shape:
        if in_domain and not resize:  # out of domain, the resize is implied and recorded
            raise GanforgeError(f"the run makes {tuple(fake.shape[1:])} images but {name} reads "
                                f"{fx.spec.input_shape}; add --resize to convert them (recorded in the card)")
        fake = resize_for(fake, fx.spec.input_shape)
        resize_policy = (f"bilinear antialiased to {fx.spec.input_shape} (samples and reference alike), "
                         "RGB->luma or grey->RGB where needed")
    if dataset == "folder":
        # A user's own pictures: the reference is the folder itself, read as training read it.
        from ganforge.data import load_dataset

        real = load_dataset(run.config.data, log=lambda *_: None)
        real_feats, real_probs = fx.run(fit_to(real.x.float() / 127.5 - 1, fx))
        reference = {"dataset": f"folder {run.config.data.path}", "split": "the training images", "n": len(real)}
    else:
        resolution = run.config.data.resolution if fx.spec.input_shape is not None else 0
        native = fx.spec.input_shape is not None and resolution == fx.spec.input_shape[-1]
        real_feats, real_probs = reference_features(fx, dataset, ref_split, log, 0 if native else resolution)
        reference = {"dataset": dataset, "split": ref_split, "n": len(real_feats)}
    if not in_domain and fx.spec.domain:
        reference["domain"] = (f"out of domain: {name} was trained on {fx.spec.dataset}, not on this data; the "
                               "numbers rank models of this data against each other and compare with nothing else")
        log(f"note: {reference['domain']}")
    fake_feats, fake_probs = fx.run(fake)
    results = image_metrics(real_feats, real_probs, fake_feats, fake_probs, metrics, seed)
    labels = run.labels(n)
    if labels is not None and fx.spec.dataset == dataset:
        read = fake_probs.argmax(1)
        if not run.method.labels_are_classes:  # InfoGAN: its codes are its own; how purely each draws one class
            from ganforge.metrics.distances import code_purity

            results["code_purity"] = code_purity(read, labels, run.n_classes, fake_probs.shape[1])
        elif fake_probs.shape[1] == run.n_classes:  # how often the classifier reads the class asked for
            results["conditional_accuracy"] = {"value": float((read == labels).float().mean()), "n": n}
    card = evaluation_card(run, fx, n, seed, reference, resize_policy, t0, results)
    if truncation is not None:
        card["generated"]["truncation"] = truncation
    return card


def evaluation_card(run, fx, n: int, seed: int, reference: dict, resize: str, t0: float, metrics: dict) -> dict:
    """The record of how a set of numbers was made: run, extractor, samples, reference, policy."""
    import time

    from ganforge.version import __version__

    return {
        "run": str(run.run_dir), "step": run.step, "checkpoint": run.checkpoint.name,
        "kimg": run.state["images_seen"] / 1000,
        "extractor": extractor_record(fx),
        "generated": {"n": n, "seed": seed, "network": run.sampling_network_name},
        "reference": reference, "resize": resize, "ganforge_version": __version__,
        "time_s": round(time.perf_counter() - t0, 2), "metrics": metrics,
    }


def extractor_record(fx) -> dict:
    """How a card names its feature network: name, sha256, accuracy, and whether it is the canonical
    network shipped with ganforge (numbers comparable between users) or a local retrain."""
    return {"name": fx.name, "sha256": fx.sha256, "origin": fx.origin, "identity": fx.identity,
            "test_accuracy": fx.card.get("test_accuracy")}


def reference_floor(dataset: str, extractor: str | None = None, seed: int = 0, log=print) -> dict:
    """FID and friends of the test split against the train split: the best a generator can hope for."""
    from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor

    fx = load_extractor(extractor or DEFAULT_FOR_DATASET[dataset], log=log)
    train_f, train_p = reference_features(fx, dataset, "train", log)
    test_f, test_p = reference_features(fx, dataset, "test", log)
    return {"extractor": extractor_record(fx), "reference": f"{dataset} train ({len(train_f)})",
            "compared": f"{dataset} test ({len(test_f)})",
            "metrics": image_metrics(train_f, train_p, test_f, test_p, IMAGE_METRICS, seed)}


def check_extractor(name: str, n: int = 5000, seed: int = 0, disturbances=None, log=print) -> dict:
    """Is the feature space sane? FID of ``n`` held-out real images (the test split, seeded pick)
    under each disturbance at increasing strength, against the train split's features (Heusel et
    al. 2017's check of the Inception FID). Each curve must rise monotonically; level 0 is the
    undisturbed floor. Returns {"extractor", "n", "curves": {name: {"levels", "fid", "unit",
    "monotonic"}}, "all_monotonic"}."""
    from ganforge.config import DataConfig
    from ganforge.data import load_dataset
    from ganforge.metrics import distances as dist
    from ganforge.metrics.disturb import DISTURBANCES
    from ganforge.metrics.features import load_extractor

    fx = load_extractor(name, log=log)
    train_feats, _ = reference_features(fx, fx.spec.dataset, "train", log)
    reference = dist.gaussian_stats(train_feats)
    test = load_dataset(DataConfig(source=fx.spec.dataset, split="test"), log)
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:n]
    images = test.x[pick].float() / 127.5 - 1
    curves = {}
    for kind in disturbances or DISTURBANCES:
        fn, levels, unit = DISTURBANCES[kind]
        fids = []
        for level in levels:
            disturbed = fn(images, level, torch.Generator().manual_seed(seed + 1))
            feats, _ = fx.run(disturbed)
            fids.append(dist.frechet_distance(*reference, *dist.gaussian_stats(feats)))
        curves[kind] = {"levels": levels, "fid": fids, "unit": unit,
                        "monotonic": all(b > a for a, b in zip(fids, fids[1:], strict=False))}
        log(f"  {kind}: FID " + ", ".join(f"{v:.1f}" for v in fids))
    return {"extractor": extractor_record(fx), "n": n, "seed": seed, "reference": f"{fx.spec.dataset} train",
            "curves": curves, "all_monotonic": all(c["monotonic"] for c in curves.values())}


def vendor_gap(name: str = "emoji-convnet", seed: int = 0, log=print) -> dict:
    """Does the feature space see style? For every pair of emoji vendors, split the test emoji both
    drew into two seeded halves H1, H2 and compare
    ``within`` = FID(A[H1], A[H2]) (one vendor, different emoji) with
    ``across`` = FID(A[H1], B[H1]) (the same emoji, another vendor's drawing), at the same n.
    A sane feature space puts ``across`` far above ``within``."""
    from ganforge.config import DataConfig
    from ganforge.data import load_dataset
    from ganforge.data.colour_sets import EMOJI_VENDORS
    from ganforge.metrics import distances as dist
    from ganforge.metrics.features import load_extractor

    fx = load_extractor(name, log=log)
    sets = {}
    for vendor in EMOJI_VENDORS:
        ds = load_dataset(DataConfig(source=f"emoji-{vendor}", split="test"), log)
        feats, _ = fx.run(fit_to(ds.x.float() / 127.5 - 1, fx))
        sets[vendor] = dict(zip(ds.extra["code"].tolist(), feats, strict=True))
    pairs = []
    for i, a in enumerate(EMOJI_VENDORS):
        for b in EMOJI_VENDORS[i + 1:]:
            shared = sorted(set(sets[a]) & set(sets[b]))
            order = torch.randperm(len(shared), generator=torch.Generator().manual_seed(seed)).tolist()
            half = len(shared) // 2
            h1, h2 = [shared[k] for k in order[:half]], [shared[k] for k in order[half:2 * half]]

            def both(x_vendor, x_codes, y_vendor, y_codes, half=half):
                x = torch.stack([sets[x_vendor][c] for c in x_codes])
                y = torch.stack([sets[y_vendor][c] for c in y_codes])
                return (dist.frechet_distance(*dist.gaussian_stats(x), *dist.gaussian_stats(y)),
                        dist.kid(x, y, subset_size=half, seed=seed)["value"])

            (fa, ka), (fb, kb), (fx_, kx) = both(a, h1, a, h2), both(b, h1, b, h2), both(a, h1, b, h1)
            pairs.append({"a": a, "b": b, "n": half, "within_a": fa, "within_b": fb, "across": fx_,
                          "kid_within_a": ka, "kid_within_b": kb, "kid_across": kx})
    worst_ratio = min(p["across"] / max(p["within_a"], p["within_b"]) for p in pairs)
    return {"extractor": extractor_record(fx), "seed": seed, "pairs": pairs, "min_ratio": worst_ratio,
            "protocol": "test emoji drawn by both vendors, seeded halves H1/H2; within = FID(A[H1], A[H2]), "
                        "across = FID(A[H1], B[H1]); the same with KID (unbiased at any n; FID at a few "
                        "hundred samples per side carries a large positive bias, equal on both sides)"}


class PeriodicEvaluator:
    """Evaluation during training: a few cheap metrics logged to metrics.jsonl every N kimg.

    Images: FID, precision/recall and class coverage in the features of the dataset's canonical
    extractor (shipped with ganforge); 2-D points: the mode statistics. Latents come from a
    generator of their own, so evaluating never changes the training run's random stream.
    """

    def __init__(self, dataset, n: int, seed: int = 0, log=print):
        self.dataset, self.n, self.seed, self.log = dataset, n, seed, log
        self._extractor = self._real = None

    def available(self) -> bool:
        from ganforge.metrics.features import DEFAULT_FOR_DATASET

        if not self.dataset.is_image:
            return True
        name = DEFAULT_FOR_DATASET.get(self.dataset.info.get("source"))
        return name is not None and self._shape_matches(name)

    def _shape_matches(self, name: str) -> bool:
        from ganforge.metrics.features import spec_for

        return tuple(self.dataset.sample_shape) == spec_for(name).input_shape

    def __call__(self, sample) -> dict:
        """Metrics of ``sample(n, seed)`` (the run's samples, n of them, drawn with seed)."""
        if not self.dataset.is_image:
            stats = evaluate_points(sample(self.n, self.seed), self.dataset, self.seed)
            return {f"eval/{k}": stats[k] for k in ("modes", "high_quality", "reverse_kl")}
        if self._extractor is None:
            from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor

            source = self.dataset.info["source"]
            self._extractor = load_extractor(DEFAULT_FOR_DATASET[source], log=self.log)
            self._real = reference_features(self._extractor, source, "test", self.log)
        feats, probs = self._extractor.run(sample(self.n, self.seed))
        m = image_metrics(*self._real, feats, probs, ["fid", "pr", "classes"], self.seed)
        return {"eval/fid": m["fid"]["value"], "eval/precision": m["pr"]["precision"],
                "eval/recall": m["pr"]["recall"], "eval/classes_seen": m["classes"]["classes_seen"]}


def evaluate_stacked(run, n: int = 26000, seed: int = 0, log=print) -> dict:
    """Stacked MNIST: mnist-lenet reads each channel; count distinct 3-digit modes and KL."""
    import time

    from ganforge.metrics.features import load_extractor

    t0 = time.perf_counter()
    fx = load_extractor("mnist-lenet", log=log)
    images = run.sample(n, seed=seed)                      # (n, 3, 28, 28)
    return evaluation_card(run, fx, n, seed, {"dataset": "stacked-mnist", "split": "uniform over 1000 modes",
                                              "n": 1000},
                           "none (each channel read as one MNIST digit)", t0, {"modes": stacked_scores(fx, images)})


def stacked_scores(fx, images) -> dict:
    """Read each channel of (n, 3, 28, 28) pictures in [-1, 1] as one digit: the modes card of
    :func:`~ganforge.metrics.distances.stacked_modes`, plus each channel's share of clear digits
    (top class p >= 0.9): how many of the digits behind the modes are drawn clearly."""
    from ganforge.metrics.distances import confident_share, stacked_modes

    probs = [fx.run(images[:, c:c + 1])[1] for c in range(3)]  # 3 x (n, 10)
    labels = probs[0].argmax(1) * 100 + probs[1].argmax(1) * 10 + probs[2].argmax(1)
    return {**stacked_modes(labels), "clear_channels": [confident_share(p) for p in probs]}
