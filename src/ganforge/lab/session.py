"""A lab session: one 2-D GAN trained step by step by ganforge's own training loop.

The session turns the page's settings into an ordinary config (data.source toy-ring, toy-grid or
toy-mixture, method gan or wgan-gp, an MLP pair with a 2-D latent), builds the method and a
:class:`~ganforge.train.loop.TrainingLoop` from it exactly as `ganforge train` does, and drives the
loop one step at a time. Its log rows go through the same health probe and monitor as a run's, so
the alerts the page shows are the alerts `ganforge train` would give. Between steps it draws what
the page shows (:meth:`LabSession.picture`): D's output over the plane, the fakes of a fixed batch
of latents with the gradient that pulls each, and G's image of a grid in z-space.

Changing the game, k or a learning rate keeps the networks and their Adam moments (so a teacher
can switch a strong D to the saturating loss mid-game); changing the data, the network size, the
batch or the seed starts again.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganforge.config import config_from_dict
from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.health import HealthMonitor, SampleProbe
from ganforge.methods import build_method
from ganforge.train.loop import LoopHooks, TrainingLoop, seed_everything
from ganforge.training import N_PROBE_POINTS, finish_run, write_run_info

GAMES = ("ns", "mm", "wgan-gp", "hinge", "lsgan")
DISTRIBUTIONS = ("ring", "grid", "mixture", "drawn")
#: five unequal blobs: a mixture whose modes differ in size, so a G that covers the big ones
#: and drops the small ones shows
MIXTURE_MEANS = [[-1.2, 0.9], [0.0, 1.4], [1.3, 0.6], [-0.6, -1.1], [1.0, -1.0]]
MIXTURE_STDS = [0.05, 0.12, 0.04, 0.18, 0.08]
DRAWN_STD = 0.03
MAX_DRAWN = 400
N_REAL_SHOWN, N_FAKE_SHOWN, N_ARROWS = 500, 400, 150
HEAT_SIDE = 48      # D is drawn on a HEAT_SIDE x HEAT_SIDE grid over the view
MANIFOLD_SIDE = 15  # G's image of a MANIFOLD_SIDE^2 grid in z-space over [-Z_EXTENT, Z_EXTENT]^2
Z_EXTENT = 2.5
LOG_EVERY = 10      # steps per log row: the monitor's patience of 6 rows is 60 steps


@dataclass
class LabSettings:
    """What the page's controls set. Every field is checked by :meth:`checked`."""

    distribution: str = "ring"
    points: list = field(default_factory=list)  # drawn: [[x, y], ...], each the mean of a small Gaussian
    game: str = "ns"
    d_steps: int = 1
    lr_d: float = 1e-3
    lr_g: float = 1e-3
    width: int = 64
    depth: int = 2
    batch_size: int = 128
    seed: int = 0

    #: settings whose change starts the session again (new data or new networks)
    restarting = ("distribution", "points", "width", "depth", "batch_size", "seed")

    def checked(self) -> LabSettings:
        def need(ok: bool, text: str) -> None:
            if not ok:
                raise GanforgeError(text)

        need(self.distribution in DISTRIBUTIONS, f"distribution must be one of {', '.join(DISTRIBUTIONS)}")
        need(self.game in GAMES, f"game must be one of {', '.join(GAMES)}")
        for name, lo, hi in (("d_steps", 1, 20), ("width", 4, 512), ("depth", 1, 6), ("batch_size", 8, 4096),
                             ("seed", 0, 2**31 - 1)):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi,
                 f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
        for name in ("lr_d", "lr_g"):
            value = getattr(self, name)
            need(isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 0.1,
                 f"{name} must be a number in (0, 0.1], got {value!r}")
        need(isinstance(self.points, list) and len(self.points) <= MAX_DRAWN,
             f"points must be a list of at most {MAX_DRAWN} [x, y] pairs")
        if self.distribution == "drawn":
            need(len(self.points) >= 2, f"draw between 2 and {MAX_DRAWN} points first")
        if self.points:
            need(all(isinstance(p, list) and len(p) == 2 and all(isinstance(c, (int, float)) and math.isfinite(c)
                                                                 and abs(c) <= 100 for c in p) for p in self.points),
                 "points must be [x, y] pairs of finite numbers within +-100")
        return self

    def updated(self, changes: dict) -> LabSettings:
        """These settings with ``changes`` (a dict from the page), checked."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise GanforgeError(f"unknown lab setting {unknown[0]!r}; settings: "
                                f"{', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes).checked()

    def config(self, steps: int = 10**9):
        """The ganforge config these settings train: the same one `ganforge train` would run."""
        data = {"source": {"ring": "toy-ring", "grid": "toy-grid"}.get(self.distribution, "toy-mixture"),
                "toy_points": 50_000}
        if self.distribution == "mixture":
            data.update(toy_means=MIXTURE_MEANS, toy_stds=MIXTURE_STDS)
        elif self.distribution == "drawn":
            data.update(toy_means=[[float(c) for c in p] for p in self.points], toy_stds=[DRAWN_STD])
        method = {"d_steps": self.d_steps, "lr_d": float(self.lr_d), "lr_g": float(self.lr_g)}
        if self.game == "wgan-gp":  # the paper's Adam(beta1 0, beta2 0.9) and lambda 10
            method.update(name="wgan-gp")
        else:
            method.update(name="gan", loss=self.game, beta1=0.5, beta2=0.9)
        return config_from_dict({
            "name": f"lab-{self.distribution}-{self.game}", "data": data,
            "model": {"arch": "mlp", "z_dim": 2, "g_width": self.width, "d_width": self.width,
                      "g_depth": self.depth, "d_depth": self.depth},
            "method": method,
            "train": {"steps": steps, "batch_size": self.batch_size, "seed": self.seed, "device": "cpu",
                      "log_every": LOG_EVERY, "sample_every": 0, "checkpoint_every": 0, "checkpoint_minutes": 0,
                      "health": True}})


class LabSession:
    """The networks, loop, monitor and log of one lab session (not thread-safe: one thread drives it)."""

    def __init__(self, settings: LabSettings | None = None, log=print):
        self.log = log
        self.settings = (settings or LabSettings()).checked()
        self.session_id = 0
        self.start()

    # -- building ---------------------------------------------------------------------------

    def start(self) -> None:
        """A fresh session from the current settings: new data, new networks, step 0, no rows."""
        s = self.settings
        self.cfg = s.config()
        seed_everything(s.seed)
        self.dataset = load_dataset(self.cfg.data, self.log)
        self.session_id += 1
        self.rows: list[dict] = []      # metrics rows and alert rows, as metrics.jsonl would hold them
        self.changes: list[dict] = []   # {"step", "text"}: settings changed mid-session
        self.error: str | None = None
        self.monitor = HealthMonitor(saturating=False, log_every=LOG_EVERY)
        self.probe = SampleProbe(self.dataset, N_PROBE_POINTS, self.log)
        self.loop = None
        self.build_loop()
        # What the page draws: fixed real points, fixed latents, a view box around the data.
        pick = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(0))[:N_REAL_SHOWN]
        self.real_shown = self.dataset.x[pick]
        self.z_shown = torch.randn(N_FAKE_SHOWN, 2, generator=torch.Generator().manual_seed(s.seed + 1))
        lo, hi = self.dataset.x.min(0).values, self.dataset.x.max(0).values
        centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * 1.5 + 0.25
        self.box = [float(centre[0]) - half, float(centre[0]) + half, float(centre[1]) - half, float(centre[1]) + half]
        axis = Z_EXTENT * torch.linspace(-1, 1, MANIFOLD_SIDE)
        zy, zx = torch.meshgrid(axis, axis, indexing="ij")
        self.z_grid = torch.stack([zx.reshape(-1), zy.reshape(-1)], 1)  # row-major: z_2 rows, z_1 columns

    def build_loop(self) -> None:
        """Method and loop for self.cfg; the networks, Adam moments and batch position of the
        previous loop carry over when there is one (a change of game, k or learning rates)."""
        old = self.loop
        method = build_method(self.cfg, self.dataset.spec, "cpu")
        probe_inputs = method.sampling_inputs(N_PROBE_POINTS, torch.Generator().manual_seed(self.settings.seed + 2))
        hooks = LoopHooks(probe=lambda step: self.probe(method.generate(probe_inputs, "cpu",
                                                                        network=method.models["G"])),
                          after_row=lambda row: [a.row() for a in self.monitor.update(row)])
        loop = TrainingLoop(None, self.cfg, method, self.dataset, torch.device("cpu"), hooks, self.log)
        if old is not None:
            for name, net in method.models.items():
                net.load_state_dict(old.method.models[name].state_dict())
            for name, opt in loop.optimizers.items():
                opt.load_state_dict(old.optimizers[name].state_dict())
                for group in opt.param_groups:  # the new settings' rates, not the saved ones
                    group["lr"], group["betas"] = loop.specs[name].lr, loop.specs[name].betas
            loop.step, loop.images_seen, loop.elapsed_s, loop.batches = \
                old.step, old.images_seen, old.elapsed_s, old.batches
        loop.prepare(self, progress=False)
        self.method, self.loop = method, loop
        self.monitor.saturating = method.game.saturating

    def write(self, row: dict) -> None:
        """The loop's metrics sink: rows are kept in memory (written out by :meth:`save`)."""
        self.rows.append(row)

    def apply(self, changes: dict) -> bool:
        """Take new settings; returns True when they started the session again."""
        new = self.settings.updated(changes)
        if new == self.settings:
            return False
        restart = any(getattr(new, k) != getattr(self.settings, k) for k in LabSettings.restarting)
        said = [f"{k} {getattr(self.settings, k)} -> {getattr(new, k)}" for k in ("game", "d_steps", "lr_d", "lr_g")
                if getattr(new, k) != getattr(self.settings, k)]
        self.settings = new
        if restart:
            self.start()
            return True
        self.cfg = new.config()
        self.build_loop()
        self.changes.append({"step": self.loop.step, "text": ", ".join(said)})
        return False

    # -- training ---------------------------------------------------------------------------

    def step(self, only: str | None = None) -> None:
        """One iteration (k D steps, one G step), or one step of ``only`` ("D" or "G")."""
        if self.error:
            raise GanforgeError(f"{self.error}; reset to start again")
        try:
            self.loop.train_one_step(only)
        except GanforgeError as exc:  # diverged: the page says so and training stops
            self.error = str(exc).split(";")[0]
            raise

    @property
    def step_count(self) -> int:
        return self.loop.step

    # -- what the page draws ----------------------------------------------------------------

    def picture(self) -> dict:
        """The current state of both players, in the plane's coordinates (floats rounded to 4 places)."""
        G, D, game = self.method.models["G"], self.method.models["D"], self.method.game
        with torch.no_grad():
            fake = G(self.z_shown)
            manifold = G(self.z_grid)
            x0, x1, y0, y1 = self.box
            xs, ys = torch.linspace(x0, x1, HEAT_SIDE), torch.linspace(y0, y1, HEAT_SIDE)
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            surface = D(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))  # row-major: y rows, x columns
        # The gradient that pulls each fake: -d l_i / d x_i for the per-sample generator loss l_i
        # (autograd.grad with respect to x alone: D's weights get no gradient).
        x = fake[:N_ARROWS].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(game.g_loss(None, D(x)) * len(x), x)
        if game.probabilistic:
            heat = {"values": torch.sigmoid(surface), "lo": 0.0, "hi": 1.0, "mid": 0.5,
                    "label": "D(x): probability of 'real'"}
        else:
            lo, hi = float(surface.min()), float(surface.max())
            mid = game.threshold if game.threshold is not None else (lo + hi) / 2
            heat = {"values": surface, "lo": lo, "hi": hi, "mid": mid, "label": "critic output D(x) (higher = real)"}
        heat["values"] = _rounded(heat["values"])
        magnitude = grad.norm(dim=1)
        last = next((r for r in reversed(self.rows) if "loss/G" in r or "loss/D" in r), {})
        return {
            "session": self.session_id, "step": self.loop.step, "kimg": round(self.loop.images_seen / 1000, 3),
            "settings": dataclasses.asdict(self.settings), "box": self.box,
            "real": _rounded(self.real_shown), "fake": _rounded(fake), "arrows": _rounded(-grad, 6),
            "gradient": {"median": float(magnitude.median()), "max": float(magnitude.max())},
            "heat": {**heat, "side": HEAT_SIDE},
            "manifold": {"side": MANIFOLD_SIDE, "points": _rounded(manifold)},
            "modes": {"covered": last.get("health/modes"), "total": len(self.dataset.info["means"])},
            "alerts": [a.as_dict() for a in self.monitor.given], "changes": self.changes, "error": self.error,
        }

    # -- saving -----------------------------------------------------------------------------

    def save(self, run_dir: Path) -> Path:
        """The session as a normal run directory: config.json (the current settings, train.steps
        = steps done), run.json, metrics.jsonl (every row and alert so far), a checkpoint that
        `ganforge train --resume` continues, the 2-D picture, eval.json, summary and report.html."""
        import json

        from ganforge.report.plots import plot_2d

        if self.loop.step == 0:
            raise GanforgeError("nothing to save yet: train at least one step")
        run_dir = Path(run_dir)
        if run_dir.exists():
            raise GanforgeError(f"{run_dir} already exists; save the session under another name")
        run_dir.mkdir(parents=True)
        cfg = self.settings.config(steps=self.loop.step)
        write_run_info(run_dir, cfg, self.dataset)
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        loop = self.loop
        loop.cfg, loop.run_dir = cfg, run_dir
        try:
            loop.save_checkpoint()
        finally:
            loop.cfg, loop.run_dir = self.cfg, None
        (run_dir / "samples").mkdir()
        picture = run_dir / "samples" / f"step_{loop.step:09d}.png"
        plot_2d(self.dataset.x[:2000], self.method.sample(2000, 0, "cpu"), self.method.models["D"], picture,
                title=f"{cfg.name}, step {loop.step}", probabilistic=self.method.game.probabilistic)
        finish_run(run_dir, cfg, self.method, self.dataset, "cpu", picture, self.log)
        return run_dir


def _rounded(t: torch.Tensor, places: int = 4) -> list:
    """A tensor as nested lists of floats rounded to ``places`` decimals (a small JSON reply)."""
    return torch.round(t.detach().double(), decimals=places).tolist()
