"""Controllable generation: moving through a generator's latent space.

- ``interpolate``: a path between the latents of two seeds, linear or spherical (slerp keeps the
  norm of z near that of typical Gaussian samples, so the middle images stay in distribution).
- ``find_direction``: a direction in z that changes one feature. A classifier (the evaluator)
  scores n samples for the feature ("looks like a 7" = log p(7 | G(z))); a least-squares linear
  probe score ~ w.z + b is fitted, and d = w / ||w|| is the direction. Saved with the run.
- ``edit``: z + a d for a range of a, with entanglement figures: how much the target class's
  probability moves per unit of a, and how much the other classes' probabilities move.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

from ganforge.errors import GanforgeError


def seed_latent(run, seed: int) -> torch.Tensor:
    """The latent (1, z_dim) that ``run.sample(1, seed)`` uses."""
    return run.method.latents(1, torch.Generator().manual_seed(seed))


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows z0, z1 (1, D) at fractions t (T,) -> (T, D)."""
    a, b = z0.flatten(), z1.flatten()
    omega = torch.arccos((a / a.norm()).dot(b / b.norm()).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolate(run, seed_from: int, seed_to: int, steps: int = 10, spherical: bool = False,
                label: int | None = None) -> torch.Tensor:
    """``steps`` images along the path from seed_from's latent to seed_to's."""
    if steps < 2:
        raise GanforgeError(f"--steps must be at least 2, got {steps}")
    z0, z1 = seed_latent(run, seed_from), seed_latent(run, seed_to)
    t = torch.linspace(0, 1, steps)
    z = slerp(z0, z1, t) if spherical else (1 - t[:, None]) * z0 + t[:, None] * z1
    return run.generate(z, label)


def _classifier(run, log=print):
    from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor

    name = DEFAULT_FOR_DATASET.get(run.config.data.source)
    if name is None:
        raise GanforgeError(f"no classifier is trained on {run.config.data.source}; latent directions need "
                            "an evaluator for the run's data (mnist or fashion-mnist)")
    return load_extractor(name, log=log)


def _directions_dir(run) -> Path:
    return run.run_dir / "directions"


def find_direction(run, attribute: int, n: int = 5000, seed: int = 0, name: str | None = None, log=print) -> dict:
    """Fit a linear probe of log p(attribute | G(z)) on z; save and return the unit direction."""
    fx = _classifier(run, log)
    n_classes = fx.spec.n_classes
    if not 0 <= attribute < n_classes:
        raise GanforgeError(f"attribute {attribute} is out of range: {fx.name} has classes 0..{n_classes - 1}")
    if n < run.method.z_dim + 2:
        raise GanforgeError(f"-n {n} is too few samples to fit a probe on {run.method.z_dim}-d latents")
    z = run.method.latents(n, torch.Generator().manual_seed(seed))
    _, probs = fx.run(run.generate(z))
    score = probs[:, attribute].clamp_min(1e-6).log().double()                  # (n,)
    design = torch.cat([z.double(), torch.ones(n, 1, dtype=torch.float64)], 1)   # (n, z_dim + 1)
    coef = torch.linalg.lstsq(design, score[:, None]).solution.flatten()
    w = coef[:-1]
    r2 = 1 - float((design @ coef - score).square().sum() / (score - score.mean()).square().sum())
    record = {"name": name or f"class-{attribute}", "attribute": attribute, "score": "log p(class | G(z))",
              "extractor": {"name": fx.name, "sha256": fx.sha256}, "n": n, "seed": seed, "r2": r2,
              "step": run.step, "probe_norm": float(w.norm()), "vector": (w / w.norm()).tolist()}
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", record["name"]):
        raise GanforgeError(f"direction name '{record['name']}' may hold only letters, digits, '.', '_' and '-'")
    out = _directions_dir(run) / f"{record['name']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    record["path"] = str(out)
    return record


def load_direction(run, name: str) -> dict:
    folder = _directions_dir(run)
    path = folder / f"{name}.json"
    if not path.is_file():
        from ganforge.errors import did_you_mean

        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise GanforgeError(f"unknown direction '{name}'{did_you_mean(name, known)}; saved: "
                            f"{', '.join(known) or 'none'} (make one with `ganforge directions {run.run_dir} "
                            "--attribute K`)")
    return json.loads(path.read_text())


def parse_amounts(text: str) -> torch.Tensor:
    """'-3:3:7' -> 7 evenly spaced amounts from -3 to 3."""
    try:
        lo, hi, count = text.split(":")
        lo, hi, count = float(lo), float(hi), int(count)
    except ValueError:
        raise GanforgeError(f"--amount must look like START:STOP:COUNT, e.g. -3:3:7; got '{text}'") from None
    if count < 2 or not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
        raise GanforgeError(f"--amount needs COUNT >= 2 and START != STOP; got '{text}'")
    return torch.linspace(lo, hi, count)


def edit(run, seed: int, direction: str, amounts: torch.Tensor, population: int = 256, log=print) -> dict:
    """Images of z_seed + a d for each amount a, and entanglement figures over a population."""
    record = load_direction(run, direction)
    d = torch.tensor(record["vector"], dtype=torch.float32)
    fx = _classifier(run, log)
    k = record["attribute"]

    def class_probs(z):  # (A, P, z_dim) -> (A, P, C)
        flat = z.reshape(-1, z.shape[-1])
        _, p = fx.run(run.generate(flat))
        return p.view(*z.shape[:2], -1)

    def slopes(p):  # least-squares slope of each class probability against the amount: (P, C)
        a = amounts - amounts.mean()
        return torch.einsum("a,apc->pc", a, p - p.mean(0)) / a.square().sum()

    z_seed = seed_latent(run, seed)
    strip_z = z_seed[None] + amounts[:, None, None] * d                        # (A, 1, z_dim)
    strip_p = class_probs(strip_z)
    images = run.generate(strip_z[:, 0])
    zs = run.method.latents(population, torch.Generator().manual_seed(10_000 + seed))
    pop_p = class_probs(zs[None] + amounts[:, None, None] * d)                 # (A, P, C)
    pop_s = slopes(pop_p)
    others = [c for c in range(pop_s.shape[1]) if c != k]
    return {
        "images": images,
        "direction": record["name"], "attribute": k, "amounts": amounts.tolist(), "seed": seed,
        "strip_target_prob": strip_p[:, 0, k].tolist(),
        "target_slope": float(pop_s[:, k].mean()),
        "others_mean_abs_slope": float(pop_s[:, others].abs().mean()),
        "others_max_abs_slope": float(pop_s[:, others].abs().mean(0).max()),
        "most_moved_other": int(others[int(pop_s[:, others].abs().mean(0).argmax())]),
        "population": population,
    }
