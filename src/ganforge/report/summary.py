"""The short text summary left in every run directory (summary.txt and summary.json)."""

from __future__ import annotations

import json
from pathlib import Path


def _fmt_time(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def write_summary(run_dir: Path, cfg, rows: list[dict], final_samples: Path, evaluation: dict | None,
                  device, objective: str = "", setup_s: float | None = None, precision: str | None = None) -> dict:
    """summary.json and summary.txt; ``objective`` is the method's own words for what it
    minimised (Method.objective()); ``setup_s``: this process's time before training began (data,
    networks, checkpoint), which time_s and img/s leave out; ``precision``: what the step computed
    in, when not train.precision (bf16 asked on a CPU without bf16 arithmetic: "precision" says fp32,
    "precision_asked" bf16)."""
    used = precision or cfg.train.precision
    said = used if used == cfg.train.precision else \
        f"{used}; {cfg.train.precision} asked, no {cfg.train.precision} arithmetic on this CPU"
    training_rows = [r for r in rows if "time_s" in r]
    last = training_rows[-1] if training_rows else {}
    alerts = [r for r in rows if "alert" in r]
    summary = {
        "name": cfg.name, "objective": objective, "step": last.get("step", 0), "kimg": last.get("kimg", 0.0),
        "time_s": last.get("time_s", 0.0), "device": str(device), "precision": used,
        "img_per_s": (round(last.get("kimg", 0) * 1000 / last["time_s"], 1) if last.get("time_s") else None),
        "setup_s": None if setup_s is None else round(setup_s, 3),
        "final": {k: last[k] for k in ("loss/D", "loss/G", "D_x", "D_G_z", "loss/AE", "recon", "kl", "neg_elbo")
                  if k in last},
        "samples": str(final_samples.relative_to(run_dir)),
        "evaluation": evaluation,
        "alerts": [{k: a[k] for k in ("step", "alert", "message", "suggestion")} for a in alerts],
    }
    if used != cfg.train.precision:
        summary["precision_asked"] = cfg.train.precision
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [
        f"ganforge run '{cfg.name}' ({cfg.method.name}, "
        f"{objective}, {_architecture(cfg)}, {cfg.data.source})",
        f"trained {summary['step']} steps = {summary['kimg']:.1f} kimg in {_fmt_time(summary['time_s'])} "
        f"on {device} ({said}), {summary['img_per_s'] or 0:,.0f} img/s"
        + (f" (set-up before training, not counted: {setup_s:.1f} s)" if setup_s is not None else ""),
    ]
    f = summary["final"]
    if f:
        lines.append("last log interval: " + ", ".join(
            f"{label} {f[k]:.3f}" for k, label in (("loss/D", "L_D"), ("loss/G", "L_G"),
                                                   ("D_x", "D(x)"), ("D_G_z", "D(G(z))"), ("loss/AE", "loss"),
                                                   ("recon", "reconstruction"), ("kl", "KL"),
                                                   ("neg_elbo", "-ELBO")) if k in f))
        if "kl" in f and "loss/AE" in f and hasattr(cfg.method, "beta"):  # the loss is not recon + KL: say what it is
            from ganforge.losses.vae import kl_weight

            m = cfg.method
            w = kl_weight(summary["kimg"] * 1000, m.beta, m.kl_warmup_kimg)
            ramp = (f" ramped from 0 over the first {m.kl_warmup_kimg:g} kimg, {w:.3g} at the end"
                    if m.kl_warmup_kimg > 0 else "")
            lines.append(f"  (loss = reconstruction + w x KL, w = method.beta = {m.beta:g}{ramp}; "
                         "-ELBO = reconstruction + KL)")
    if evaluation:
        lines.append(f"evaluation ({evaluation['n']} samples): {evaluation['modes']}/"
                     f"{evaluation['modes_total']} modes, {100 * evaluation['high_quality']:.1f}% "
                     f"high quality, reverse KL {evaluation['reverse_kl']:.3f}")
    lines += [f"health alert at step {a['step']:,} ({a['alert']}): {a['message']}" for a in alerts] or [
        "health: no alerts"]
    lines += [f"final samples: {summary['samples']}", "loss curves: loss_curves.png", "report: report.html",
              "metrics per step: metrics.jsonl", f"resume: ganforge train --resume {run_dir}"]
    (run_dir / "summary.txt").write_text("\n".join(lines) + "\n")
    return summary


def _architecture(cfg) -> str:
    """The method's fixed networks (Method.architecture), or model.arch for the methods that read it."""
    from ganforge.methods import METHODS

    return METHODS[cfg.method.name].architecture or cfg.model.arch
