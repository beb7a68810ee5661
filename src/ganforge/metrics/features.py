"""Feature extractors for image metrics, chosen by name.

An extractor maps images (N, C, H, W) in [-1, 1] to features (N, D) and class probabilities
(N, K). No pretrained network can be downloaded here, so ganforge ships its own: the
**canonical** ``mnist-lenet``, ``fashion-lenet`` and ``emoji-convnet`` (colour, 64 px) weights live inside the package
(``metrics/weights/``, float16 safetensors with a JSON card) and their sha256 is pinned below,
so every user measures in the same feature space and gets the same FID for the same samples.

``ganforge evaluator train`` reproduces a network from its recipe, deterministically (one
thread, deterministic algorithms, seeded data order), into the user's cache; it is used only
when asked for by name (``mnist-lenet:local``) and is marked "retrained locally" on every card.
A FID computed with these features is not comparable with an Inception FID.
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
from ganforge.models.classifier import EmojiConvNet, LeNet
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
    arch: str = "lenet"        # lenet | emoji-convnet
    n_subclasses: int = 0      # a second label trained alongside (the emoji subcategory), 0: none
    domain: tuple = ()         # every data source whose images it was trained to read
    max_lr: float = 2e-3       # the recipe's one-cycle peak learning rate


EMOJI_DOMAIN = ("emoji-all", "emoji-google", "emoji-twitter", "emoji-apple", "emoji-facebook", "emoji-emojione")
EXTRACTORS = {
    "mnist-lenet": ExtractorSpec("mnist-lenet", "mnist", (1, 28, 28), 10, epochs=4, min_accuracy=0.990,
                                 domain=("mnist",)),
    "fashion-lenet": ExtractorSpec("fashion-lenet", "fashion-mnist", (1, 28, 28), 10, epochs=6, min_accuracy=0.90,
                                   domain=("fashion-mnist",)),
    # Colour, 64 px: every emoji vendor's training split, category and subcategory.
    "emoji-convnet": ExtractorSpec("emoji-convnet", "emoji-all", (3, 64, 64), 10, epochs=15, min_accuracy=0.80,
                                   batch=500, arch="emoji-convnet", n_subclasses=99, domain=EMOJI_DOMAIN),
    # The standard FID network; weights only from the user's disk (GANFORGE_INCEPTION_WEIGHTS).
    "inception": ExtractorSpec("inception", None, None, 1008, batch=100),
}
INCEPTION_ENV = "GANFORGE_INCEPTION_WEIGHTS"
#: data source (or short name, as `ganforge evaluator train emoji`) -> the network that reads it
DEFAULT_FOR_DATASET = {source: name for name, spec in EXTRACTORS.items() for source in spec.domain}
DEFAULT_FOR_DATASET["emoji"] = "emoji-convnet"


def spec_for(name: str) -> ExtractorSpec:
    if name not in EXTRACTORS:
        raise GanforgeError(f"unknown feature extractor '{name}'{did_you_mean(name, EXTRACTORS)}; "
                            f"available: {', '.join(EXTRACTORS)}")
    return EXTRACTORS[name]


#: sha256 of the shipped weights files: a canonical network is these bytes or it is refused
CANONICAL_SHA256 = {
    "mnist-lenet": "4d8a91f4843a0e46b3b6f6ea9ffec434797413214a0de87913f432d9ba47bdcc",
    "fashion-lenet": "8ca081abb92d728046e042a06c57484ebcbb98640144c553ec2e8652275ca185",
    "emoji-convnet": "fd907c87495a8f91ff33fa004ad6225c5dd84a6136013456ceeb2d9a7b0e09c9",
}
LOCAL_SUFFIX = ":local"  # "mnist-lenet:local": the network `ganforge evaluator train` made here


def _local_paths(name: str, root: Path | None = None) -> tuple[Path, Path]:
    root = root or cache_dir() / "evaluators"
    return root / f"{name}.safetensors", root / f"{name}.json"


def _canonical_files(name: str):
    from importlib import resources

    root = resources.files("ganforge") / "metrics" / "weights"
    return root / f"{name}.safetensors", root / f"{name}.json"


class FeatureExtractor:
    """A loaded extractor: ``features(images)``, ``probs(images)``, plus its ``card``."""

    def __init__(self, spec: ExtractorSpec, net: torch.nn.Module, card: dict, device="cpu"):
        self.spec, self.card, self.device = spec, card, torch.device(device)
        self.net = net.to(self.device).eval()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def sha256(self) -> str:
        return self.card["sha256"]

    @property
    def origin(self) -> str:
        """"canonical" (shipped with ganforge), "retrained locally", or "user file" (inception)."""
        return self.card.get("origin", "user file")

    @property
    def identity(self) -> str:
        """What made the features, in one line: e.g. "canonical mnist-lenet 3f2a...(64 hex)"."""
        return f"{self.origin} {self.name} {self.sha256}"

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


def load_extractor(name: str, device="cpu", log=print) -> FeatureExtractor:
    """The canonical network ``name`` shipped with ganforge, or ``name:local`` (the one
    `ganforge evaluator train` made in this cache), or ``inception`` (weights from the user's disk).
    Never trains anything."""
    local = name.endswith(LOCAL_SUFFIX)
    base = name[:-len(LOCAL_SUFFIX)] if local else name
    spec = spec_for(base)
    if base == "inception":
        if local:
            raise GanforgeError("inception has no local variant; set GANFORGE_INCEPTION_WEIGHTS instead")
        return load_inception(device)
    if local:
        weights, card_path = _local_paths(base)
        if not (weights.exists() and card_path.exists()):
            raise GanforgeError(f"{name} does not exist yet; make it with `ganforge evaluator train {spec.dataset}` "
                                f"(or use the canonical {base})")
        return load_retrained(base, weights.parent, device)
    else:
        weights, card_path = _canonical_files(base)
        data = weights.read_bytes()
        if _sha256(data) != CANONICAL_SHA256[base]:
            raise GanforgeError(f"the shipped {base} weights are damaged (sha256 differs from the pinned "
                                f"{CANONICAL_SHA256[base][:12]}); reinstall ganforge")
        card = {**json.loads(card_path.read_text()), "origin": "canonical"}
    return FeatureExtractor(spec, _loaded_net(spec, data), card, device)


def load_retrained(name: str, folder: Path, device="cpu") -> FeatureExtractor:
    """A network that :func:`train_extractor` saved in ``folder`` (marked "retrained locally")."""
    spec = spec_for(name)
    weights, card_path = _local_paths(name, Path(folder))
    data, card = weights.read_bytes(), json.loads(card_path.read_text())
    if _sha256(data) != card.get("sha256"):
        raise GanforgeError(f"{weights} does not match its recorded sha256; train it again with "
                            f"`ganforge evaluator train {spec.dataset}`")
    return FeatureExtractor(spec, _loaded_net(spec, data), {**card, "origin": "retrained locally"}, device)


def _new_net(spec: ExtractorSpec) -> torch.nn.Module:
    if spec.arch == "emoji-convnet":
        return EmojiConvNet(spec.n_classes, spec.input_shape[0], spec.n_subclasses)
    return LeNet(spec.n_classes, spec.input_shape[0])


def _loaded_net(spec: ExtractorSpec, data: bytes) -> torch.nn.Module:
    """The network with the weights in ``data``. Building it must not draw from the global RNG (its
    random initialisation is thrown away): loading a feature network, e.g. for the health probe
    or a periodic evaluation, must never change the course of a training run."""
    with torch.random.fork_rng(devices=[]):
        net = _new_net(spec)
    net.load_state_dict({k: v.float() for k, v in load(data).items()})
    return net


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


class deterministic_cpu:
    """Within this block torch uses ``threads`` CPU threads and deterministic algorithms (the
    recipe of the canonical networks: a float sum's order, hence its rounding, depends on the
    number of threads). Both settings are restored afterwards."""

    def __init__(self, threads: int = 1):
        self.threads = threads

    def __enter__(self):
        self.saved = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(True)

    def __exit__(self, *exc):
        torch.set_num_threads(self.saved[0])
        torch.use_deterministic_algorithms(self.saved[1])


def train_extractor(name: str, epochs: int | None = None, seed: int = 0, log=print, out_dir: Path | None = None,
                    progress: bool = True) -> dict:
    """Train the classifier ``name`` by its recipe on the dataset's train split and save it (float16
    safetensors + card) as ``name:local`` in the cache, or in ``out_dir``. Deterministic: seed 0
    on the same torch build and CPU reproduces the canonical weights. Returns the card, with
    ``canonical`` true when the bytes equal the shipped network's."""
    from ganforge.config import DataConfig
    from ganforge.data import load_dataset

    name = name[:-len(LOCAL_SUFFIX)] if name.endswith(LOCAL_SUFFIX) else name
    spec = spec_for(name)
    if spec.dataset is None:
        raise GanforgeError(f"{name} is not trained by ganforge; there is no recipe to run")
    epochs = epochs or spec.epochs
    train = load_dataset(DataConfig(source=spec.dataset, split="train"), log)
    test = load_dataset(DataConfig(source=spec.dataset, split="test"), log)
    t0 = time.perf_counter()
    with deterministic_cpu(threads=1):
        net = _fit(spec, train, epochs, seed, log, progress)
        # The network is stored, and measured, in float16: what is shipped is what is tested.
        # (Batch-norm's step counter is an integer and stays one.)
        state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
                 for k, v in net.state_dict().items()}
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        net.eval()
        with torch.no_grad():
            x = test.x.float() / 127.5 - 1
            feats = torch.cat([net.features(chunk) for chunk in x.split(500)])
            pred = net.head(feats).argmax(1)
            sub_pred = net.sub_head(feats).argmax(1) if spec.n_subclasses else None
    accuracy = round(float((pred == test.y).float().mean()), 6)
    extra_card = {}
    if sub_pred is not None:
        extra_card["test_accuracy_subcategory"] = round(float((sub_pred == test.extra["subcategory"]).float()
                                                              .mean()), 6)
    if accuracy < spec.min_accuracy:
        raise GanforgeError(f"{name} reached only {accuracy:.4f} test accuracy (needs {spec.min_accuracy}); "
                            "train it again with more epochs (--epochs)")
    weights, card_path = _local_paths(name, out_dir)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(weights)
    sha = sha256_file(weights)
    max_lr = f"{spec.max_lr:.0e}".replace("e-0", "e-")  # "2e-3", as the shipped cards write it
    card = {"name": name, "dataset": spec.dataset, "test_accuracy": accuracy, **extra_card, "epochs": epochs,
            "seed": seed, "train_images": len(train), "test_images": len(test),
            "recipe": f"{type(net).__name__}, Adam + one-cycle LR (max {max_lr}), batch 128, bf16 autocast, "
                      "1 CPU thread, deterministic algorithms"
                      + (", loss = cross-entropy of category + of subcategory" if spec.n_subclasses else "")
                      + "; stored as float16",
            "train_seconds": round(time.perf_counter() - t0, 1), "feature_dim": net.feature_dim,
            "sha256": sha, "torch_version": torch.__version__, "ganforge_version": __version__}
    atomic_write_bytes(card_path, json.dumps(card, indent=2).encode())
    card["canonical"] = sha == CANONICAL_SHA256.get(name)
    log(f"{name}: test accuracy {accuracy:.4f}; saved {weights}")
    return card


def _fit(spec: ExtractorSpec, train, epochs: int, seed: int, log, progress: bool) -> torch.nn.Module:
    """The recipe's training loop: Adam with a one-cycle LR, bf16 autocast, seeded batches; the
    loss is the cross-entropy of the label (+ that of the second label, when the spec has one)."""
    from tqdm import tqdm

    from ganforge.data import BatchIterator

    torch.manual_seed(seed)
    net = _new_net(spec).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch_size = 128
    steps_per_epoch = len(train) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec.max_lr, total_steps=epochs * steps_per_epoch)
    tensors = {"x": train.x, "y": train.y}
    if spec.n_subclasses:
        tensors["sub"] = train.extra["subcategory"]
    batches = BatchIterator(tensors, batch_size, seed, channels_last=True)
    net.train()
    bar = tqdm(total=epochs * steps_per_epoch, desc=f"training {spec.name}", unit="step", dynamic_ncols=True,
               disable=not progress, mininterval=0.5 if sys.stderr.isatty() else 15)
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            b = next(batches)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                feats = net.features(b.x)
                loss = F.cross_entropy(net.head(feats), b.y)
                if spec.n_subclasses:
                    loss = loss + F.cross_entropy(net.sub_head(feats), b["sub"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
        log(f"{spec.name}: epoch {epoch + 1}/{epochs}, last batch loss {loss.item():.4f}")
    bar.close()
    return net


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
        with torch.random.fork_rng(devices=[]):  # as for LeNet: loading never moves the global RNG
            net = FIDInceptionV3()
        net.load_state_dict(state)
    except Exception as exc:
        first = str(exc).splitlines()[0][:200]
        raise GanforgeError(f"{path} is not a usable FID Inception weights file ({type(exc).__name__}: {first})") \
            from None
    card = {"name": "inception", "path": str(Path(path).resolve()), "sha256": sha256_file(Path(path)),
            "test_accuracy": None, "feature_dim": FIDInceptionV3.feature_dim}
    return FeatureExtractor(spec_for("inception"), net, card, device)
