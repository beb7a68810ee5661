"""The loader fuzzer: random damage to every file a run directory holds, and only clean errors.

Each mutation (a flipped byte, a truncation, inserted bytes, or for JSON files a value replaced
by one of another type or a key deleted) is applied to a copy of one file of a finished toy run
with a single checkpoint; then the loaders a user reaches through `train --resume`, `sample`
and `report` read the run. Allowed outcomes: success, or GanforgeError. Anything else (a
traceback) fails. The counts per outcome are printed (`pytest -s`). The fast test runs 300
mutations; ``-m slow`` runs 1,500.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from ganforge.api import Run, read_run_config
from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.health import HealthMonitor
from ganforge.methods import build_method
from ganforge.report.plots import plot_training_curves, read_metrics
from ganforge.train.loop import LoopHooks, TrainingLoop
from ganforge.train.metrics_log import MetricsLog

TOY = ["--set", "train.steps=10", "--set", "train.checkpoint_every=0", "--set", "data.toy_points=2000",
       "--set", "model.g_width=16", "--set", "model.d_width=16", "--set", "train.log_every=5"]
FILES = ["config.json", "run.json", "metrics.jsonl", "checkpoints/step_000000010/state.json",
         "checkpoints/step_000000010/models.safetensors", "checkpoints/step_000000010/train_state.safetensors"]
ODD_VALUES = [None, -1, 0, 1e308, float("nan"), "x", [], {}, [1, 2], True, 2**70]


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["flip", "truncate", "insert", "zero-run"])
    if not data:
        return b"\x00"
    at = rng.randrange(len(data))
    if kind == "flip":
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + data[at:]
    return data[:at] + b"\x00" * rng.randint(1, 64) + data[at + 64:]


def _leaves(obj, path=()):
    """Every (path, value) of a JSON tree."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list) and len(obj) <= 16:  # RNG key lists are long; treat them as one value
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    yield path, obj


def _mutate_json(text: str, rng: random.Random) -> str:
    tree = json.loads(text)
    path, _ = rng.choice([p for p in _leaves(tree) if p[0]])
    parent = tree
    for k in path[:-1]:
        parent = parent[k]
    if rng.random() < 0.25 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(ODD_VALUES)
    return json.dumps(tree)


def _mutate_jsonl(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    i = rng.randrange(len(lines))
    lines[i] = _mutate_json(lines[i], rng) if rng.random() < 0.5 else lines[i][:rng.randrange(len(lines[i]) + 1)]
    return "\n".join(lines) + "\n"


def mutate(path: Path, rng: random.Random) -> str:
    """Damage ``path`` in place; return the kind of damage."""
    data = path.read_bytes()
    if path.suffix in (".json", ".jsonl") and rng.random() < 0.6:
        try:
            text = (_mutate_jsonl if path.suffix == ".jsonl" else _mutate_json)(data.decode(), rng)
            path.write_text(text)
            return "json"
        except (ValueError, IndexError):
            pass
    path.write_bytes(_mutate_bytes(data, rng))
    return "bytes"


def load_everything(run: Path, target: str) -> None:
    """What `train --resume`, `sample` and `report` read, in process (no training step)."""
    cfg = read_run_config(run)
    data = load_dataset(cfg.data, log=lambda *_: None)
    method = build_method(cfg, data.spec, "cpu")
    loop = TrainingLoop(run, cfg, method, data, torch.device("cpu"), LoopHooks(), lambda *_: None)
    loop.resume()
    Run(run, log=lambda *_: None).sample(2)
    rows = read_metrics(run)
    if target == "metrics.jsonl":  # what resume, the monitor's replay and the plots do with the rows
        MetricsLog(run / "metrics.jsonl", keep_through_step=10)
        monitor = HealthMonitor(saturating=False, log_every=5)
        for row in rows:
            monitor.update(row, replay=True)
        plot_training_curves(rows, run / "loss_curves.png")


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fuzz") / "run"
    assert main(["train", "toy-ring", *TOY, "--out", str(run), "--quiet"]) == 0
    return run


def fuzz(toy_run: Path, scratch: Path, n: int, seed: int) -> Counter:
    rng = random.Random(seed)
    outcomes: Counter = Counter()
    for i in range(n):
        run = scratch / f"m{i}"
        shutil.copytree(toy_run, run)
        target = FILES[i % len(FILES)]
        kind = mutate(run / target, rng)
        try:
            load_everything(run, target)
            outcomes[f"{target}: loaded"] += 1
        except GanforgeError:
            outcomes[f"{target}: clean error"] += 1
        except Exception as exc:  # noqa: BLE001 - the point: anything but GanforgeError is a failure
            raise AssertionError(f"mutation {i} ({kind}) of {target} gave {type(exc).__name__}: {exc}") from exc
        shutil.rmtree(run)
    print("\n".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    return outcomes


def test_fuzzed_run_directories_give_clean_errors(toy_run, tmp_path):
    outcomes = fuzz(toy_run, tmp_path, 300, seed=0)
    assert sum(outcomes.values()) == 300
    # The checks do refuse damage: most damaged checkpoints are refused, not silently used.
    refused = sum(v for k, v in outcomes.items() if "state.json: clean" in k or "train_state" in k and "clean" in k)
    assert refused >= 50


@pytest.mark.slow
def test_fuzzed_run_directories_give_clean_errors_long(toy_run, tmp_path):
    assert sum(fuzz(toy_run, tmp_path, 1500, seed=1).values()) == 1500
