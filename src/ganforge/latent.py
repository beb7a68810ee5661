"""Controllable generation: moving through a generator's latent space.

- ``interpolate``: a path between the latents of two seeds, linear or spherical (slerp keeps the
  norm of z near that of typical Gaussian samples, so the middle images stay in distribution).
- ``find_direction``: a direction in z that changes one feature. A classifier (the evaluator)
  scores n samples for the feature ("looks like a 7" = log p(7 | G(z))); a least-squares linear
  probe score ~ w.z + b is fitted, and d = w / ||w|| is the direction. Saved with the run.
- ``edit``: z + a d for a range of a (in standard deviations of the latents along d), with
  entanglement figures: how much the target class's probability moves per unit of a, and how
  much the other classes' probabilities move.

Directions and edits work in Z, the generator's input, or for a StyleGAN run also in W, its
intermediate space (w = mapping(z), pictures drawn with each layer's fixed noise), which the
paper finds less entangled than Z.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

from ganforge.errors import GanforgeError

SPACES = ("z", "w")


def seed_latent(run, seed: int) -> torch.Tensor:
    """The latent (1, z_dim) that ``run.sample(1, seed)`` uses."""
    return run.method.latents(1, torch.Generator().manual_seed(seed))


class LatentSpace:
    """Where a direction lives: ``draw(n, seed)`` latents as the run samples them and
    ``generate(latents)`` their pictures. "z": the generator's input; "w": a StyleGAN's intermediate
    space, w = mapping(z) of the same seeded z (no truncation), drawn with each layer's fixed noise."""

    def __init__(self, run, space: str = "z"):
        if space not in SPACES:
            raise GanforgeError(f"unknown latent space {space!r}: choose z or w")
        if space == "w" and run.config.method.name != "stylegan":
            raise GanforgeError(f"--space w is StyleGAN's intermediate space; {run.run_dir} is a "
                                f"{run.config.method.name} run (use --space z)")
        self.run, self.name = run, space

    def draw(self, n: int, seed: int) -> torch.Tensor:
        z = self.run.method.latents(n, torch.Generator().manual_seed(seed))
        if self.name == "z":
            return z
        with torch.no_grad():
            return self.run.method.sampling_network.w(z.to(self.run.device)).float().cpu()

    @torch.no_grad()
    def generate(self, latents: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        if self.name == "z":
            return self.run.generate(latents)
        G = self.run.method.sampling_network.eval()
        return torch.cat([G.synthesis(G.broadcast(w.to(self.run.device)), noise="const").float().cpu()
                          for w in latents.split(chunk)])


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


def _class_probs(fx, images: torch.Tensor) -> torch.Tensor:
    """The classifier's class probabilities (N, K), pictures resized to its input where they differ
    (a 32-px StyleGAN scored by the 28-px MNIST classifier): a score to steer by, not a metric."""
    from ganforge.evaluation import fit_to

    return fx.run(fit_to(images, fx))[1]


def _directions_dir(run) -> Path:
    return run.run_dir / "directions"


def find_direction(run, attribute: int, n: int = 5000, seed: int = 0, name: str | None = None, log=print,
                   space: str = "z") -> dict:
    """Fit a linear probe of log p(attribute | G(z)) on the latents of ``space`` (z, or a StyleGAN's
    w); save and return the unit direction."""
    latent = LatentSpace(run, space)
    fx = _classifier(run, log)
    n_classes = fx.spec.n_classes
    if not 0 <= attribute < n_classes:
        raise GanforgeError(f"attribute {attribute} is out of range: {fx.name} has classes 0..{n_classes - 1}")
    z = latent.draw(n, seed)  # (n, D): z, or w
    if n < z.shape[1] + 2:
        raise GanforgeError(f"-n {n} is too few samples to fit a probe on {z.shape[1]}-d latents")
    probs = _class_probs(fx, latent.generate(z))
    score = probs[:, attribute].clamp_min(1e-6).log().double()                  # (n,)
    design = torch.cat([z.double(), torch.ones(n, 1, dtype=torch.float64)], 1)   # (n, D + 1)
    coef = torch.linalg.lstsq(design, score[:, None]).solution.flatten()
    w = coef[:-1]
    r2 = 1 - float((design @ coef - score).square().sum() / (score - score.mean()).square().sum())
    record = {"name": name or f"class-{attribute}" + ("-w" if space == "w" else ""), "attribute": attribute,
              "space": space, "score": f"log p(class | G({space}))",
              "extractor": {"name": fx.name, "sha256": fx.sha256}, "n": n, "seed": seed, "r2": r2,
              "step": run.step, "probe_norm": float(w.norm()), "vector": (w / w.norm()).tolist(),
              # amounts are in standard deviations of the latents along d: 1 in Z (N(0, I)), measured in W
              "unit": 1.0 if space == "z" else float((z.double() @ (w / w.norm())).std())}
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
    latent = LatentSpace(run, record.get("space", "z"))  # directions saved before W existed are in Z
    d = torch.tensor(record["vector"], dtype=torch.float32) * record.get("unit", 1.0)  # amount 1: one std along d
    fx = _classifier(run, log)
    k = record["attribute"]

    def class_probs(z):  # (A, P, z_dim) -> (A, P, C)
        flat = z.reshape(-1, z.shape[-1])
        p = _class_probs(fx, latent.generate(flat))
        return p.view(*z.shape[:2], -1)

    def slopes(p):  # least-squares slope of each class probability against the amount: (P, C)
        a = amounts - amounts.mean()
        return torch.einsum("a,apc->pc", a, p - p.mean(0)) / a.square().sum()

    z_seed = latent.draw(1, seed)
    strip_z = z_seed[None] + amounts[:, None, None] * d                        # (A, 1, D)
    strip_p = class_probs(strip_z)
    images = latent.generate(strip_z[:, 0])
    zs = latent.draw(population, 10_000 + seed)
    pop_p = class_probs(zs[None] + amounts[:, None, None] * d)                 # (A, P, C)
    pop_s = slopes(pop_p)
    others = [c for c in range(pop_s.shape[1]) if c != k]
    return {
        "images": images,
        "direction": record["name"], "space": latent.name, "attribute": k, "amounts": amounts.tolist(), "seed": seed,
        "strip_target_prob": strip_p[:, 0, k].tolist(),
        "target_slope": float(pop_s[:, k].mean()),
        "others_mean_abs_slope": float(pop_s[:, others].abs().mean()),
        "others_max_abs_slope": float(pop_s[:, others].abs().mean(0).max()),
        "most_moved_other": int(others[int(pop_s[:, others].abs().mean(0).argmax())]),
        "population": population,
    }
