"""report.html: one self-contained page about a run (no network, no scripts, images embedded).

Sections: the headline numbers, the health alerts with their evidence, charts of the training
signals (losses, D outputs, D accuracy, gradient norms, sample diversity, evaluation metrics;
alert steps marked on each), the fixed-noise samples over time (for 2-D runs: the points over
D's heat map), evaluation cards, and the resolved config.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ganforge.report.cards import evaluation_section  # noqa: E402
from ganforge.report.page import e as _e  # noqa: E402
from ganforge.report.page import figure as _figure  # noqa: E402
from ganforge.report.page import read_json as _read_json  # noqa: E402
from ganforge.report.plots import read_metrics  # noqa: E402

MAX_SAMPLE_GRIDS = 12

#: (chart id, title, y label, [(metric key, legend label)], log scale, y limits)
CHARTS = [
    ("losses", "Losses", "loss", [("loss/D", "discriminator L_D"), ("loss/G", "generator L_G"),
                                  ("loss/AE", "autoencoder loss")], False, None),
    ("elbo", "Autoencoder terms", "nats per image", [("neg_elbo", "-ELBO"), ("recon", "reconstruction"),
                                                      ("kl", "KL"), ("perceptual", "perceptual")], False, None),
    ("d-outputs", "Discriminator outputs", "mean D output",
     [("D_x", "D(x), real"), ("D_G_z", "D(G(z)), fake"), ("D_out_real", "D(x), real (raw)"),
      ("D_out_fake", "D(G(z)), fake (raw)")], False, None),
    ("d-accuracy", "Discriminator accuracy", "fraction correct",
     [("D_acc_real", "on real"), ("D_acc_fake", "on fake")], False, (-0.02, 1.02)),
    ("gradients", "Gradient norms", "L2 norm (log scale)",
     [("grad_norm/D", "D weights"), ("grad_norm/G", "G weights"),
      ("G_out_grad", "reaching G's output through D (per sample)")], True, None),
    ("diversity", "Sample diversity (health probe)", "generated spread / real spread",
     [("health/diversity", "diversity"), ("health/top_class", "largest class share")], False, (0, None)),
    ("modes", "Mixture modes reached (health probe)", "modes", [("health/modes", "modes reached")], False,
     (0, None)),
    ("codebook", "Codebook use (VQ-VAE)", "codes in effective use", [("perplexity", "perplexity of a batch's codes")],
     False, (0, None)),
    ("evaluation", "Evaluation during training", "value",
     [("eval/fid", "FID (classifier features)"), ("eval/precision", "precision"), ("eval/recall", "recall"),
      ("eval/modes", "modes captured"), ("eval/high_quality", "high-quality fraction")], False, None),
]

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #222; }
h1 { margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; } td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; text-align: left; }
.alert { border-left: 5px solid #d33; background: #fff4f4; padding: 0.6em 1em; margin: 0.6em 0; }
.alert .kind { font-weight: bold; color: #b00; }
.ok { border-left: 5px solid #2a2; background: #f3fbf3; padding: 0.6em 1em; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1em; }
figure { margin: 0; } figure img { width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.samples { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 0.8em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write RUN/report.html (or ``out``) from the run's files and return its path."""
    from ganforge.errors import GanforgeError

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise GanforgeError(f"{run_dir} is not a ganforge run (no config.json); pass the folder that "
                            "`ganforge train` wrote")
    config = json.loads((run_dir / "config.json").read_text())
    rows = read_metrics(run_dir)
    training = [r for r in rows if "time_s" in r]
    alerts = [r for r in rows if "alert" in r]
    summary = _read_json(run_dir / "summary.json") or {}
    out = Path(out) if out else run_dir / "report.html"

    title = config.get("name", run_dir.name)
    if config.get("data", {}).get("source") in ("folder", "paired", "unpaired"):  # the preset's name would mislead
        title = f"{run_dir.name} ({title} on {Path(config['data'].get('path') or '?').name})"
    parts = [f"<h1>{_e(title)}</h1>",
             f"<p class='sub'>{_e(_headline(config, training, summary))}</p>"]
    autoencoder = config.get("method", {}).get("name") in ("ae", "vae", "vqvae")
    parts += _alerts_section(alerts, autoencoder, training)
    parts.append("<h2>Training signals</h2><div class='charts'>")
    for chart in CHARTS:
        png = _chart(training, rows, alerts, *chart[1:])
        if png is not None:
            caption = _chart_caption(chart[0], autoencoder, training)
            parts.append(_figure(png, chart[1], f"chart-{chart[0]}", caption))
    parts.append("</div>")
    parts += _samples_section(run_dir, config)
    parts += evaluation_section(run_dir, summary)
    parts.append("<h2>Configuration</h2><pre>" + _e(json.dumps(config, indent=2)) + "</pre>")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>ganforge report: {_e(config.get('name', ''))}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(out)
    return out


def _headline(config: dict, training: list[dict], summary: dict) -> str:
    m, d = config.get("method", {}), config.get("data", {})
    last = training[-1] if training else {}
    objective = summary.get("objective") or (
        f"{config.get('model', {}).get('likelihood')} decoder" if m.get("name") in ("ae", "vae")
        else f"{m.get('loss')} loss")  # a run from before summaries named their objective
    source = d.get("source")
    if source in ("folder", "paired", "unpaired") and d.get("path"):
        source = f"your pictures in {d['path']}"
    steps = config.get("train", {}).get("steps")
    done = last.get("step", 0)
    bits = [f"{m.get('name')} ({objective}), {config.get('model', {}).get('arch')} on {source}",
            f"{done:,} steps, {last.get('kimg', 0):.1f} kimg"]
    if not summary or (isinstance(steps, int) and done < steps):
        bits.append(f"UNFINISHED: {done:,} of {steps:,} steps so far (continue with `ganforge train --resume`)"
                    if isinstance(steps, int) else "UNFINISHED")
    if summary.get("time_s"):
        bits.append(f"{summary['time_s'] / 60:.1f} min on {summary.get('device')} "
                    f"({summary.get('img_per_s') or 0:,.0f} img/s)")
    return "; ".join(bits)


def _alerts_section(alerts: list[dict], autoencoder: bool = False,
                    training: list[dict] | None = None) -> list[str]:
    parts = ["<h2>Health</h2>"]
    if not alerts and autoencoder:
        parts.append("<div class='ok' id='no-alerts'>No alerts: every value stayed finite. (The alert rules "
                     "concern the GAN game; an autoencoder's progress shows in its loss terms below.)</div>")
    elif not alerts:
        claims, doubts = _health_facts(training or [])
        text = "No alerts: " + (", ".join(claims) if claims else "every value stayed finite") + "."
        if doubts:  # what the numbers show although no rule fired; the page never claims more than they do
            parts.append(f"<div class='alert' id='no-alerts'>{_e(text)} But {_e('; '.join(doubts))}.</div>")
        else:
            parts.append(f"<div class='ok' id='no-alerts'>{_e(text)}</div>")
    for a in alerts:
        parts.append(f"<div class='alert' data-alert='{_e(a['alert'])}'><span class='kind'>{_e(a['alert'])}</span> "
                     f"at step {a['step']:,} ({a.get('kimg', 0):.1f} kimg)<br>{_e(a['message'])}<br>"
                     f"<em>{_e(a['suggestion'])}</em></div>")
    return parts


def _health_facts(training: list[dict]) -> tuple[list[str], list[str]]:
    """(what the run's numbers support, what they contradict) for a run without alerts, judged with
    the health monitor's own thresholds (health.monitor.Thresholds)."""
    from ganforge.health.monitor import Thresholds

    th, claims, doubts = Thresholds(), [], []
    fake = [r["D_G_z"] for r in training if isinstance(r.get("D_G_z"), (int, float))]
    if fake and 0 <= min(fake) and max(fake) <= 1:  # a probability (cross-entropy games)
        if fake[-1] > th.fake_prob:
            claims.append("the discriminator never won outright")
        else:
            doubts.append(f"D(G(z)) ended at {fake[-1]:.3f}: the discriminator rejects the fakes")
    grad = _loss_trend(training, "G_out_grad")
    if grad and grad[0] > 0:
        if grad[1] >= th.grad_fraction * grad[0]:
            claims.append("the gradient reaching the generator held up")
        else:
            doubts.append(f"the gradient reaching the generator fell to {grad[1] / grad[0]:.1%} of its early size")
    div = [r["health/diversity"] for r in training[th.warmup_rows:] if r.get("health/diversity") is not None]
    if div and div[-1] <= th.diversity:
        doubts.append(f"the samples' diversity ended at {div[-1]:.2f} of the real data's, at or below the "
                      f"mode-collapse line of {th.diversity:g} (no alert, because it was still rising)")
    elif div and min(div) <= th.diversity:
        claims.append(f"samples' diversity recovered to {div[-1]:.2f} of the real data's after dipping to "
                      f"{min(div):.2f}")
    elif div:
        claims.append(f"samples stayed diverse ({min(div):.2f} to {max(div):.2f} of the real data's spread)")
    trend = _loss_trend(training, "loss/G")
    if trend and trend[1] > 2 * abs(trend[0]) + 0.5:
        doubts.append(f"L_G climbed from {trend[0]:.2f} to {trend[1]:.2f} over the run (the discriminator is "
                      "gaining; look at the samples)")
    claims.append("every value stayed finite")
    return claims, doubts


def _loss_trend(training: list[dict], key: str) -> tuple[float, float] | None:
    """Mean of ``key`` over the first and the last tenth of the run's rows (at least 2 rows each)."""
    values = [r[key] for r in training if isinstance(r.get(key), (int, float))]
    if len(values) < 10:
        return None
    tenth = max(2, len(values) // 10)
    return sum(values[:tenth]) / tenth, sum(values[-tenth:]) / tenth


def _chart_caption(chart_id: str, autoencoder: bool = False, training: list[dict] | None = None) -> str:
    caption = _chart_advice(chart_id, autoencoder)
    if chart_id == "losses":
        moves = []
        for key, label in (("loss/D", "L_D"), ("loss/G", "L_G"), ("loss/AE", "the loss")):
            trend = _loss_trend(training or [], key)
            if trend:
                moves.append(f"{label} from {trend[0]:.3g} to {trend[1]:.3g}")
        if moves:
            caption += " This run (first tenth to last tenth of its rows): " + ", ".join(moves) + "."
    return caption


def _chart_advice(chart_id: str, autoencoder: bool = False) -> str:
    if autoencoder and chart_id == "losses":
        return ("The loss minimised: reconstruction, plus the KL term times its weight for a VAE (it rises "
                "while a KL warm-up raises the weight to beta), or beta times the commitment term for a VQ-VAE.")
    return {
        "losses": "What healthy looks like: both losses level off and stay bounded; L_D near 0 means D wins "
                  "outright.",
        "elbo": "The reconstruction term -log p(x|z) and the KL of the posterior from the prior; their sum "
                "is -ELBO, an upper bound on -log p(x).",
        "d-outputs": "Healthy BCE games: D(x) a little above 0.5, D(G(z)) a little below. D(G(z)) near 0 "
                     "for long: D wins and (with the saturating loss) G's gradient vanishes.",
        "d-accuracy": "D's accuracy near 100% on fakes for long means G is not fooling it at all.",
        "gradients": "The gradient reaching G through D falling by orders of magnitude is the vanishing "
                     "gradient; a sudden jump upwards is divergence.",
        "diversity": "Spread of a fixed batch of samples relative to real data (classifier features where "
                     "one is trained). Near 0, or one class taking most samples: mode collapse.",
        "modes": "Modes of the 2-D mixture reached by high-quality samples of the probe batch; a fall is "
                 "mode collapse (or mode hopping).",
        "codebook": "exp of the entropy of a batch's codes: K when all K codes are used equally. A fall to a few "
                    "dozen while the reconstruction stalls is codebook collapse (dead codes); restarts "
                    "(method.dead_below) revive them.",
        "evaluation": "Metrics measured during training (train.eval_every_kimg).",
    }[chart_id]


def _chart(training, rows, alerts, title, ylabel, series, log_scale, ylim) -> bytes | None:
    source = [r for r in rows if any(k.startswith("eval/") for k in r)] if title.startswith("Evaluation") else training
    present = [(k, label) for k, label in series if any(k in r for r in source)]
    if not present:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for key, label in present:
        pts = [(r["kimg"], r[key]) for r in source if key in r and r[key] is not None]
        if log_scale:
            pts = [(x, y) for x, y in pts if y > 0]
        if pts:
            ax.plot(*zip(*pts, strict=True), label=label, marker="o" if len(pts) < 15 else None, ms=3)
    for a in alerts:
        ax.axvline(a.get("kimg", 0), color="#d33", lw=1, ls=":")
    if alerts:
        ax.plot([], [], color="#d33", lw=1, ls=":", label="alert")
    if log_scale:
        ax.set_yscale("log")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.set_xlabel("thousands of real images seen (kimg)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _samples_section(run_dir: Path, config: dict) -> list[str]:
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    if not grids:
        return []
    if len(grids) > MAX_SAMPLE_GRIDS:  # evenly spaced, always keeping the first and the last
        idx = {round(i * (len(grids) - 1) / (MAX_SAMPLE_GRIDS - 1)) for i in range(MAX_SAMPLE_GRIDS)}
        grids = [grids[i] for i in sorted(idx)]
    from ganforge.methods import METHODS, Method

    if config.get("data", {}).get("source", "").startswith("toy"):
        what = "generated points (orange) and real points (blue) over D's output"
    else:
        what = METHODS.get(config.get("method", {}).get("name"), Method).preview_caption
    parts = [f"<h2>Samples over time</h2><p>{_e(what)}.</p><div class='samples' id='samples'>"]
    for g in grids:
        step = int(g.stem.split("_")[1])
        parts.append(_figure(g.read_bytes(), f"step {step:,}", f"samples-{step}", f"step {step:,}"))
    parts.append("</div>")
    return parts
