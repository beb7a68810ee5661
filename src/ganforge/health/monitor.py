"""The health monitor: rules over the stream of metrics rows that raise plain-language alerts.

Every rule looks only at logged rows (loss, D outputs, D accuracy, gradient norms and the sample
probe's diversity), so a monitor fed the rows of metrics.jsonl again reaches exactly the same
state: that is how a resumed run knows which alerts it already gave. An alert is given once when
its condition starts (after ``patience`` rows in a row); it can be given again only after its
condition has been clear for ``patience`` rows.

Alerts (``Alert.kind``):

* ``vanishing-gradient``: D rejects the fakes (D(G(z)) < 0.05, or it classifies >= 99 % of fakes
  correctly) and the gradient reaching G's output has fallen to <= 1/10 of its early value.
* ``mode-collapse``: generated samples are far less diverse than real ones (diversity <= 0.25
  of real) and not spreading out (up by < 0.05 over ``patience`` rows), or most 2-D modes are
  lost. Not judged while the vanishing-gradient alert holds (a G without gradient is stuck at
  whatever it was, which is the earlier failure).
* ``oscillation``: D(x) - D(G(z)) changes sign again and again with a large swing of D(G(z)) (the
  players chase each other) and no evaluation metric improves meanwhile.
* ``divergence``: a loss or a gradient norm has grown 50x past its early scale.
* ``non-finite``: a loss or statistic became NaN or infinite.
* ``inverted-colours`` (translation): G's outputs are anti-correlated with their targets
  (``target_corr`` below -0.1) after the warm-up, the pix2pix symptom of swapped or
  mismatched sides.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass

KINDS = ("vanishing-gradient", "mode-collapse", "oscillation", "divergence", "non-finite", "inverted-colours")


@dataclass(frozen=True)
class Alert:
    kind: str
    step: int
    kimg: float
    message: str      # what is happening, with the evidence
    suggestion: str   # what to try

    def row(self) -> dict:
        """The metrics.jsonl row of this alert."""
        return {"step": self.step, "kimg": self.kimg, "alert": self.kind, "message": self.message,
                "suggestion": self.suggestion}

    def text(self) -> str:
        return f"alert at step {self.step:,} ({self.kind}): {self.message} {self.suggestion}"

    @classmethod
    def from_row(cls, row: dict) -> Alert:
        return cls(row["alert"], row["step"], row.get("kimg", 0.0), row["message"], row["suggestion"])

    as_dict = asdict


@dataclass(frozen=True)
class Thresholds:
    patience: int = 6              # rows a condition must hold before it is reported
    fake_prob: float = 0.05        # D(G(z)) below this: D rejects the fakes
    fake_acc: float = 0.99         # or D classifies at least this share of fakes correctly
    grad_fraction: float = 0.1     # gradient reaching G at most this fraction of its early value
    diversity: float = 0.25        # generated spread at most this fraction of real spread ...
    diversity_rise: float = 0.05   # ... and not rising by this much over `patience` rows
    top_class: float = 0.5         # evidence: one class takes at least this share of samples
    warmup_rows: int = 4           # rows before diversity is judged (a fresh G is a blur)
    window: int = 20               # rows looked at for oscillation
    min_sign_changes: int = 6
    min_swing: float = 0.15        # std of D(G(z)) over the window
    growth: float = 50.0           # divergence: |value| past growth * (early scale + 1)
    inverted_corr: float = -0.1    # translation outputs correlated with their targets below this


class HealthMonitor:
    """Feed it every metrics row (training rows, evaluation rows, earlier alert rows) with
    :meth:`update`; it returns the alerts that start at that row."""

    def __init__(self, saturating: bool, log_every: int, thresholds: Thresholds | None = None):
        """saturating: the game's generator loss saturates (losses.gan.Game.saturating), which
        names the vanishing-gradient failure; log_every: steps between rows."""
        self.saturating, self.log_every = saturating, log_every
        self.th = thresholds or Thresholds()
        self.rows: deque[dict] = deque(maxlen=max(self.th.window, self.th.patience) + 1)
        self.n_rows = 0
        self.early: dict[str, float] = {}     # early scale of gradients and losses
        self.streak = {k: 0 for k in KINDS}   # rows the condition has held in a row
        self.clear = {k: 0 for k in KINDS}    # rows the condition has been clear in a row
        self.active: set[str] = set()
        self.evals: list[tuple[int, float]] = []  # (step, FID or -modes): lower is better
        self.given: list[Alert] = []

    # -- feeding ---------------------------------------------------------------------------
    def update(self, row: dict, replay: bool = False) -> list[Alert]:
        """Take one row; return the alerts that start here. ``replay=True`` (feeding the log of a
        run being resumed) changes the state in the same way but returns nothing: those alerts
        were given, and their rows are in the log."""
        if "alert" in row:  # an alert row of the log: it was given
            self.active.add(row["alert"])
            self.given.append(Alert.from_row(row))
            return []
        if "eval/fid" in row or "eval/modes" in row:
            score = row["eval/fid"] if "eval/fid" in row else -row["eval/modes"]
            self.evals.append((row["step"], score))
            return []
        if "loss/D" not in row and "loss/G" not in row:
            return []
        self.rows.append(row)
        self.n_rows += 1
        if self.n_rows <= 3:
            for key in ("G_out_grad", "loss/D", "loss/G", "grad_norm/D", "grad_norm/G"):
                if key in row and math.isfinite(row[key]):
                    self.early[key] = max(self.early.get(key, 0.0), abs(row[key]))
        new = []
        for kind, check in (("non-finite", self._non_finite), ("divergence", self._divergence),
                            ("vanishing-gradient", self._vanishing), ("mode-collapse", self._collapse),
                            ("oscillation", self._oscillation), ("inverted-colours", self._inverted)):
            found = check(row)
            patience = 1 if kind == "non-finite" else self.th.patience
            if found is None:
                self.streak[kind] = 0
                self.clear[kind] += 1
                if kind in self.active and self.clear[kind] >= self.th.patience:
                    self.active.discard(kind)
                continue
            self.streak[kind] += 1
            self.clear[kind] = 0
            if kind not in self.active and self.streak[kind] >= patience:
                self.active.add(kind)
                message, suggestion = found
                alert = Alert(kind, row["step"], row.get("kimg", 0.0), message, suggestion)
                if not replay:
                    self.given.append(alert)
                    new.append(alert)
        return new

    def steps(self, rows: int) -> str:
        return f"{rows * self.log_every:,} steps"

    # -- rules: each returns None, or (message, suggestion) -----------------------------------
    def _non_finite(self, row):
        bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
        if not bad:
            return None
        return (f"{bad[0]} became {row[bad[0]]} at step {row['step']:,}: training has broken down and "
                "cannot recover.",
                "Resume from the last checkpoint with lower learning rates (method.lr_d, method.lr_g), or "
                "train with fp32 (train.precision=fp32) or with method.loss=ns.")

    def _divergence(self, row):
        for key in ("loss/D", "loss/G", "grad_norm/D", "grad_norm/G"):
            early = self.early.get(key)
            value = row.get(key)
            if early is None or value is None or not math.isfinite(value) or self.n_rows <= 3:
                continue
            if abs(value) > self.th.growth * (early + 1.0):
                return (f"{key} is {value:.3g}, {abs(value) / max(early, 1e-12):,.0f}x its value at the "
                        "start: the training is diverging.",
                        "Lower the learning rates, add a gradient penalty (method.r1_gamma) or spectral "
                        "normalisation (model.spectral_norm=true).")
        return None

    def _vanishing(self, row):
        fake_prob, fake_acc = row.get("D_G_z"), row.get("D_acc_fake")
        rejects = (fake_prob is not None and fake_prob < self.th.fake_prob) or (
            fake_prob is None and fake_acc is not None and fake_acc >= self.th.fake_acc)
        grad, early = row.get("G_out_grad"), self.early.get("G_out_grad")
        if not rejects or grad is None or not early or grad > self.th.grad_fraction * early:
            return None
        held = self.steps(self.streak["vanishing-gradient"] + 1)
        evidence = (f"D(G(z)) has stayed below {self.th.fake_prob} for {held}" if fake_prob is not None
                    else f"D has rejected at least {100 * self.th.fake_acc:.0f}% of the fakes for {held}")
        now = fake_prob if fake_prob is not None else fake_acc
        message = (f"The discriminator is winning: {evidence} (now {now:.2g})"
                   f" and the gradient reaching the generator is {grad / early:.1e} of what it was at the start.")
        if self.saturating:
            return (message + " This is the vanishing-gradient failure of the saturating loss log(1 - D(G(z))).",
                    "Try the non-saturating loss (method.loss=ns), a lower D learning rate (method.lr_d) or "
                    "fewer D steps (method.d_steps).")
        return (message + " The generator is learning almost nothing.",
                "Try a lower D learning rate (method.lr_d), fewer D steps (method.d_steps), an R1 penalty "
                "(method.r1_gamma) or a smaller discriminator (model.d_width).")

    def _collapse(self, row):
        if self.n_rows <= self.th.warmup_rows or "vanishing-gradient" in self.active:
            return None  # a fresh G is a blur; a G without gradient is stuck, not collapsed
        div, top, seen = row.get("health/diversity"), row.get("health/top_class"), row.get("health/classes_seen")
        evidence = []
        if div is not None and math.isfinite(div) and div <= self.th.diversity:
            # Still spreading out (a young G) is progress, not collapse.
            past = [r.get("health/diversity") for r in list(self.rows)[-self.th.patience - 1:-1]]
            past = [p for p in past if p is not None and math.isfinite(p)]
            if not past or div - min(past) < self.th.diversity_rise:
                evidence.append(f"generated samples are only {100 * div:.0f}% as spread out as real ones")
                if top is not None and top >= self.th.top_class:
                    evidence.append(f"one class makes up {100 * top:.0f}% of them ({seen} classes seen)")
        modes = row.get("health/modes")
        peak = max((r.get("health/modes", 0) for r in self.rows), default=0)
        if modes is not None and peak >= 4 and modes <= peak // 2:
            evidence.append(f"they reach {modes} modes, down from {peak}")
        if not evidence:
            return None
        held = self.steps(self.streak["mode-collapse"] + 1)
        return (f"Mode collapse: {'; '.join(evidence)} (sample probe, held {held}).",
                "The generator is producing a few outputs that fool D. Try a lower generator learning rate "
                "(method.lr_g), an R1 penalty (method.r1_gamma), an EMA of G (method.ema_halflife_kimg), "
                "or a Wasserstein loss (method.name=wgan-gp).")

    def _oscillation(self, row):
        recent = [r for r in self.rows if "D_x" in r and "D_G_z" in r]
        if len(recent) < self.th.window:
            return None
        recent = recent[-self.th.window:]
        gaps = [r["D_x"] - r["D_G_z"] for r in recent]
        changes = sum(1 for a, b in zip(gaps, gaps[1:], strict=False) if (a > 0) != (b > 0))
        fakes = [r["D_G_z"] for r in recent]
        mean = sum(fakes) / len(fakes)
        swing = math.sqrt(sum((f - mean) ** 2 for f in fakes) / len(fakes))
        if changes < self.th.min_sign_changes or swing < self.th.min_swing:
            return None
        start = recent[0]["step"]
        scores = [s for st, s in self.evals if st >= start]
        earlier = [s for st, s in self.evals if st < start]
        if scores and earlier and min(scores) < min(earlier):
            return None  # the metric is still improving: oscillating, but progressing
        return (f"Oscillation without progress: over the last {self.steps(len(recent))} D(x) and D(G(z)) "
                f"swapped places {changes} times and D(G(z)) swings by +-{swing:.2f}"
                + (", while the evaluation metric has not improved." if scores else "."),
                "The players are chasing each other. Lower both learning rates, raise Adam's beta2, "
                "or add an R1 penalty (method.r1_gamma).")

    def _inverted(self, row):
        corr = row.get("target_corr")
        if self.n_rows <= self.th.warmup_rows or corr is None or not math.isfinite(corr):
            return None
        if corr >= self.th.inverted_corr:
            return None
        return (f"The translations are anti-correlated with their targets (r = {corr:.2f} for "
                f"{self.steps(self.streak['inverted-colours'] + 1)}): light comes out dark and colours inverted.",
                "A few hundred steps of this can pass as L1 pulls the colours in; if it lasts, check that the "
                "sides are not swapped (A/ holds the inputs, B/ the targets; side by side, the input is on the "
                "left), that transparent pictures on both sides meet the same data.background, and that "
                "method.l1_weight is not 0.")
