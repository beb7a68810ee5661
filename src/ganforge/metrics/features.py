"""Feature extractors for image metrics, chosen by name.

An extractor maps images (N, C, H, W) in [-1, 1] to features (N, D) and class probabilities
(N, K). ganforge trains its own (``mnist-lenet``, ``fashion-lenet``) because no pretrained
network can be downloaded here; each is stored as safetensors in the cache with a JSON card
(sha256 of the weights, test accuracy, training recipe), and every metric records which
extractor and which hash produced it. A FID computed with these features is not comparable
with an Inception FID.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load, save_file

from ganforge.data.cache import atomic_write_bytes, cache_dir, sha256_file
from ganforge.errors import GanforgeError, did_you_mean
from ganforge.models.classifier import LeNet
from ganforge.version import __version__


@dataclass(frozen=True)
class ExtractorSpec:
    name: str
    dataset: str | None       # training data (and the default reference set); None: external network
    input_shape: tuple | None  # (C, H, W) the network expects; None: any size (it resizes itself)
    n_classes: int
    epochs: int = 0
    min_accuracy: float = 0.0  # test accuracy a freshly trained extractor must reach
    batch: int = 1000          # images per forward pass


EXTRACTORS = {
    "mnist-lenet": ExtractorSpec("mnist-lenet", "mnist", (1, 28, 28), 10, epochs=4, min_accuracy=0.990),
    "fashion-lenet": ExtractorSpec("fashion-lenet", "fashion-mnist", (1, 28, 28), 10, epochs=6, min_accuracy=0.90),
    # The standard FID network; weights only from the user's disk (GANFORGE_INCEPTION_WEIGHTS).
    "inception": ExtractorSpec("inception", None, None, 1008, batch=100),
}
INCEPTION_ENV = "GANFORGE_INCEPTION_WEIGHTS"
DEFAULT_FOR_DATASET = {spec.dataset: name for name, spec in EXTRACTORS.items()}


def spec_for(name: str) -> ExtractorSpec:
    if name not in EXTRACTORS:
        raise GanforgeError(f"unknown feature extractor '{name}'{did_you_mean(name, EXTRACTORS)}; "
                            f"available: {', '.join(EXTRACTORS)}")
    return EXTRACTORS[name]


def _paths(name: str) -> tuple[Path, Path]:
    root = cache_dir() / "evaluators"
    return root / f"{name}.safetensors", root / f"{name}.json"


class FeatureExtractor:
    """A loaded extractor: ``features(images)``, ``probs(images)``, plus its ``card``."""

    def __init__(self, spec: ExtractorSpec, net: LeNet, card: dict, device="cpu"):
        self.spec, self.card, self.device = spec, card, torch.device(device)
        self.net = net.to(self.device).eval()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def sha256(self) -> str:
        return self.card["sha256"]

    @torch.no_grad()
    def run(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, D), class probabilities (N, K)) as float32 on CPU."""
        if self.spec.input_shape is not None and tuple(images.shape[1:]) != self.spec.input_shape:
            raise GanforgeError(f"{self.name} reads {self.spec.input_shape} images, got "
                                f"{tuple(images.shape[1:])}; pass --resize to convert them explicitly")
        feats, probs = [], []
        for chunk in images.split(self.spec.batch):
            f = self.net.features(chunk.to(self.device, torch.float32))
            feats.append(f.cpu())
            probs.append(F.softmax(self.net.head(f), 1).cpu())
        return torch.cat(feats), torch.cat(probs)


def load_extractor(name: str, device="cpu", train_if_missing: bool = True, log=print) -> FeatureExtractor:
    """Load ``name`` from the cache, training it first when missing (and saying so)."""
    spec = spec_for(name)
    if name == "inception":
        return load_inception(device)
    weights, card_path = _paths(name)
    if not (weights.exists() and card_path.exists()):
        if not train_if_missing:
            raise GanforgeError(f"feature extractor {name} is not trained yet; run `ganforge evaluator train "
                                f"{spec.dataset}`")
        log(f"feature extractor {name} is missing; training it now on {spec.dataset} (once, about a minute)")
        train_extractor(name, log=log)
    card = json.loads(card_path.read_text())
    data = weights.read_bytes()
    import hashlib

    if hashlib.sha256(data).hexdigest() != card["sha256"]:
        raise GanforgeError(f"{weights} does not match its recorded sha256; retrain it with `ganforge evaluator "
                            f"train {spec.dataset}`")
    net = LeNet(spec.n_classes, spec.input_shape[0])
    net.load_state_dict(load(data))
    return FeatureExtractor(spec, net, card, device)


def train_extractor(name: str, epochs: int | None = None, seed: int = 0, log=print) -> dict:
    """Train the classifier on the dataset's train split; check and record its test accuracy."""
    from ganforge.config import DataConfig
    from ganforge.data import BatchIterator, load_dataset

    spec = spec_for(name)
    epochs = epochs or spec.epochs
    torch.manual_seed(seed)
    train = load_dataset(DataConfig(source=spec.dataset, split="train"), log)
    test = load_dataset(DataConfig(source=spec.dataset, split="test"), log)
    net = LeNet(spec.n_classes, spec.input_shape[0]).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch_size = 128
    steps_per_epoch = len(train) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * steps_per_epoch)
    batches = BatchIterator({"x": train.x, "y": train.y}, batch_size, seed, channels_last=True)
    t0 = time.perf_counter()
    net.train()
    from tqdm import tqdm

    bar = tqdm(total=epochs * steps_per_epoch, desc=f"training {name}", unit="step", dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 15)
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            b = next(batches)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = F.cross_entropy(net(b.x), b.y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
        log(f"{name}: epoch {epoch + 1}/{epochs}, last batch loss {loss.item():.4f}")
    bar.close()
    net.eval()
    with torch.no_grad():
        x = test.x.float() / 127.5 - 1
        pred = torch.cat([net(chunk).argmax(1) for chunk in x.split(2000)])
    accuracy = float((pred == test.y).float().mean())
    if accuracy < spec.min_accuracy:
        raise GanforgeError(f"{name} reached only {accuracy:.4f} test accuracy (needs {spec.min_accuracy}); "
                            "train it again with more epochs (--epochs)")
    weights, card_path = _paths(name)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
    tmp.replace(weights)
    card = {"name": name, "dataset": spec.dataset, "test_accuracy": accuracy, "epochs": epochs, "seed": seed,
            "train_seconds": round(time.perf_counter() - t0, 1), "feature_dim": LeNet.feature_dim,
            "sha256": sha256_file(weights), "ganforge_version": __version__}
    atomic_write_bytes(card_path, json.dumps(card, indent=2).encode())
    log(f"{name}: test accuracy {accuracy:.4f}; saved {weights}")
    return card


def load_inception(device="cpu") -> FeatureExtractor:
    """The standard FID Inception from the file named by GANFORGE_INCEPTION_WEIGHTS (a PyTorch state
    dict, read with ``torch.load(weights_only=True)``, or a safetensors file with the same keys)."""
    import os

    from ganforge.models.inception import FIDInceptionV3

    path = os.environ.get(INCEPTION_ENV, "")
    if not path or not Path(path).is_file():
        raise GanforgeError(f"the inception extractor needs the standard FID Inception weights on disk; set "
                            f"{INCEPTION_ENV}=/path/to/pt_inception-2015-12-05-6726825d.pth (ganforge downloads "
                            "nothing)")
    try:
        if path.endswith(".safetensors"):
            state = load(Path(path).read_bytes())
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        net = FIDInceptionV3()
        net.load_state_dict(state)
    except Exception as exc:
        first = str(exc).splitlines()[0][:200]
        raise GanforgeError(f"{path} is not a usable FID Inception weights file ({type(exc).__name__}: {first})") \
            from None
    card = {"name": "inception", "path": str(Path(path).resolve()), "sha256": sha256_file(Path(path)),
            "test_accuracy": None, "feature_dim": FIDInceptionV3.feature_dim}
    return FeatureExtractor(spec_for("inception"), net, card, device)
