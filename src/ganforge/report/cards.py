"""The report's evaluation section: one row per evaluation card (sample metrics, translation and
super-resolution tables, reconstruction at stated bits), the held-out examples of the newest card,
and for a VQ-VAE the codebook: its most used codes in pictures and the usage histogram.
"""

from __future__ import annotations

import io
from pathlib import Path

from ganforge.report.page import e as _e
from ganforge.report.page import figure as _figure
from ganforge.report.page import read_json as _read_json


def evaluation_section(run_dir: Path, summary: dict) -> list[str]:
    cards = sorted((run_dir / "eval").glob("card_step_*.json")) if (run_dir / "eval").exists() else []
    rows = []
    if summary.get("evaluation"):
        e = summary["evaluation"]
        rows.append(("end of training (2-D modes)",
                     f"{e['modes']}/{e['modes_total']} modes, {100 * e['high_quality']:.1f}% high quality, "
                     f"reverse KL {e['reverse_kl']:.3f} ({e['n']} samples)"))
    for path in cards:
        card = _read_json(path) or {}
        metrics = card.get("metrics") or card.get("modes") or {}
        if "test_sets" in card:  # super-resolution: bicubic -> model on each test set
            rows.append((f"step {card.get('step', 0):,}", _upscaling_line(card["test_sets"])))
            continue
        if card.get("generated") and card.get("extractor"):
            measured = f" (extractor {card['extractor']['name']}, {card['generated']['n']} samples)"
        elif card.get("reference") and "translation" in metrics:
            measured = f" ({card['reference']['n']} held-out pairs)"
        else:
            measured = ""
        rows.append((f"step {card.get('step', '?'):,}" if isinstance(card.get("step"), int) else path.name,
                     _flatten_metrics(metrics) + measured))
    recon_cards = sorted((run_dir / "eval").glob("reconstruction_step_*.json")) if (run_dir / "eval").exists() else []
    recon = [c for c in (_read_json(p) for p in recon_cards) if c and "metrics" in c]
    for card in recon:
        rows.append((f"step {card.get('step', 0):,}, reconstruction",
                     f"{card.get('n')} {card.get('split')} pictures through {card.get('code')} "
                     f"({card.get('bits_per_image', 0):g} bits per image): " + _flatten_metrics(card["metrics"])))
    if not rows:
        return []
    parts = (["<h2>Evaluation</h2><table id='evaluation'><tr><th>when</th><th>result</th></tr>"]
             + [f"<tr><td>{_e(a)}</td><td>{_e(b)}</td></tr>" for a, b in rows] + ["</table>"])
    last = (_read_json(cards[-1]) or {}) if cards else (recon[-1] if recon else {})
    picture = run_dir / "eval" / str((last.get("examples") or {}).get("path", ""))
    if picture.is_file():  # held-out examples in rows: translations, upscalings or reconstructions
        caption = (last.get("examples") or {}).get("caption", "held-out pairs: input | output | target")
        parts.append(_figure(picture.read_bytes(), "held-out examples", "translations",
                             f"{caption}, at step {last.get('step', 0):,}"))
    codebook = next((c for c in reversed(recon) if "codebook" in c), None)
    if codebook:
        parts += _codebook_figures(run_dir, codebook)
    return parts


def _codebook_figures(run_dir: Path, card: dict) -> list[str]:
    """A VQ-VAE's codebook on the card's split: the most used codes in pictures, and how many
    times each code was used (sorted, log scale), with the perplexity and the share used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    book, step = card["codebook"], card.get("step", 0)
    parts = ["<h2>Codebook</h2><div class='charts'>"]
    picture = run_dir / "eval" / str(book.get("picture", ""))
    if picture.is_file():
        parts.append(_figure(picture.read_bytes(), "the most used codes", "codebook",
                             "what codes stand for: 64 codes spread over the ranks of use (most used top left, "
                             "rarest bottom right), each as the 3x3 code cells of a real picture around one place "
                             "the encoder chose it (the code is the centre cell)"))
    counts = sorted(book.get("counts", []), reverse=True)
    if counts:
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        ax.bar(range(len(counts)), [max(c, 0.8) for c in counts], width=1.0, color="#4c72b0")
        ax.set_yscale("log")
        ax.set_xlabel("code, by rank of use")
        ax.set_ylabel(f"uses in {card.get('n')} {card.get('split')} pictures")
        ax.set_title(f"Codebook use: perplexity {book['perplexity']:.1f} of {book['codes']}, "
                     f"{100 * book['used']:.0f}% used")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        parts.append(_figure(buf.getvalue(), "codebook usage histogram", "codebook-usage",
                             f"uses of each code on the {card.get('split')} split at step {step:,}; codes at the "
                             "floor were never used (dead)"))
    parts.append("</div>")
    return parts


def _upscaling_line(test_sets: dict) -> str:
    """'icons-oxygen test (110): PSNR-Y 23.93 -> 27.63 dB (+3.70), SSIM-Y 0.727 -> 0.854, FID 200.5
    -> 35.7 (bicubic -> model); photos (8): ...'"""
    bits = []
    for name, t in test_sets.items():
        b, m = t.get("bicubic", {}), t.get("model", {})
        try:
            text = (f"{name} ({t['pictures']}): PSNR-Y {b['psnr_y']['mean']:.2f} -> {m['psnr_y']['mean']:.2f} dB "
                    f"({t['psnr_y_gain_db']:+.2f}), SSIM-Y {b['ssim_y']['mean']:.3f} -> {m['ssim_y']['mean']:.3f}")
            if "fid" in b and "fid" in m:
                text += f", FID {b['fid']['value']:.1f} -> {m['fid']['value']:.1f}"
        except (KeyError, TypeError):
            continue
        bits.append(text)
    return "; ".join(bits) + " (bicubic -> model)" if bits else ""


def _flatten_metrics(metrics: dict, depth: int = 0) -> str:
    """One line of a card's metrics: numbers, per-image means as "mean ± se", an FID (or any
    interval) by its value; nested groups (a translation direction) in brackets."""
    bits = []
    for name, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            bits.append(f"{name} {value:.4g}")
        elif isinstance(value, dict) and "mean" in value and "se" in value:
            bits.append(f"{name} {value['mean']:.4g} ± {value['se']:.2g}")
        elif isinstance(value, dict) and "value" in value:
            bits.append(f"{name} {value['value']:.4g}")
        elif isinstance(value, dict) and depth < 2:
            inner = _flatten_metrics(value, depth + 1)
            if inner:
                bits.append(f"{name}: {inner}")
    return "; ".join(bits) if depth == 0 else "[" + ", ".join(bits) + "]"


