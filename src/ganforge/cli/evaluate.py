"""Measuring a run: `evaluate`, the feature networks (`evaluator`) and `report`."""

from __future__ import annotations

import json
from pathlib import Path

from ganforge.cli.common import _err, run_command
from ganforge.errors import GanforgeError


def add_parsers(sub) -> None:
    e = run_command(sub, "evaluate", "print a run's metrics and write an evaluation card", cmd_evaluate)
    e.add_argument("--metrics", help="comma-separated: fid,kid,pr,dc,score,classes (images; default all)")
    e.add_argument("-n", type=int, default=None, help="samples to draw (images: 10000; 2-D: train.eval_samples)")
    e.add_argument("--ref", default="test", choices=["train", "test"], help="reference split (default test)")
    e.add_argument("--extractor", help="feature network (default: the one trained on the run's dataset)")
    e.add_argument("--resize", action="store_true", help="convert images to the extractor's input size")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="where the run's networks run")
    e.add_argument("--psi", type=float, default=None, help="StyleGAN: sample with truncation in W (psi; recorded "
                   "in the card)")
    e.add_argument("--truncation", type=float, default=None, help="sample with latents truncated at +-T "
                   "(recorded in the card)")

    ev = sub.add_parser("evaluator", help="the feature networks behind the image metrics")
    evsub = ev.add_subparsers(dest="evaluator_command", required=True, metavar="ACTION")
    for action, text in (("train", "retrain a feature network by its recipe, into this cache as NAME:local"),
                         ("info", "print a network's card (accuracy, sha256, origin)"),
                         ("floor", "metrics of the test split against the train split"),
                         ("check", "sanity check: FID of held-out images under growing disturbances")):
        a = evsub.add_parser(action, help=text)
        a.add_argument("dataset", nargs="+" if action == "check" else None,
                       help="mnist, fashion-mnist or emoji, or an extractor name (mnist-lenet; mnist-lenet:local "
                       "for the "
                       "one `evaluator train` made here)" + ("; several to draw them in one figure"
                                                              if action == "check" else ""))
        a.add_argument("--json", action="store_true")
        if action == "train":
            a.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
            a.add_argument("--seed", type=int, default=0, help="seed (0 reproduces the canonical network)")
        if action == "check":
            a.add_argument("-n", type=int, default=5000, help="held-out images (default 5000)")
            a.add_argument("-o", "--output", default="feature_check.png", help="figure to write")
        a.set_defaults(func=cmd_evaluator)

    rp = sub.add_parser("report", help="write a run's self-contained report.html (curves, samples, alerts)")
    rp.add_argument("run", help="run directory")
    rp.add_argument("-o", "--output", help="where to write the page (default RUN/report.html)")
    rp.add_argument("--json", action="store_true", help="print the path as JSON")
    rp.set_defaults(func=cmd_report)


def cmd_evaluate(args) -> int:
    from ganforge import api

    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    if args.psi is not None and args.truncation is not None:
        raise GanforgeError("give --psi (StyleGAN, in W) or --truncation (Gaussian latents), not both")
    truncation = args.psi if args.psi is not None else args.truncation
    if truncation is not None:
        stylegan = api.read_run_config(args.run_dir).method.name == "stylegan"
        if stylegan != (args.psi is not None):
            raise GanforgeError("--psi is StyleGAN's truncation in W; other runs take --truncation" if not stylegan
                                else "a StyleGAN run truncates in W: pass --psi instead of --truncation")
    result = api.evaluate(args.run_dir, n=args.n, seed=args.seed, metrics=metrics, ref_split=args.ref,
                          extractor=args.extractor, resize=args.resize, step=args.step, log=_err,
                          device=args.device, truncation=truncation)
    if args.json:
        print(json.dumps(result))
        return 0
    if "bits_per_image" in result:  # a VQ-VAE: its reconstruction card
        from ganforge.cli.autoencoders import format_reconstruction_card

        print(format_reconstruction_card(result))
        return 0
    print(f"run {result['run']} at step {result['step']} ({result['kimg']:.1f} kimg)")
    for k, v in result.get("training", {}).items():
        print(f"  {k:<16} {v:.4f}")
    if "modes" in result:
        m = result["modes"]
        print(f"  modes captured   {m['modes']}/{m['modes_total']}")
        print(f"  high quality     {100 * m['high_quality']:.1f}%  ({m['n']} samples, seed {m['seed']})")
        print(f"  reverse KL       {m['reverse_kl']:.4f}")
        if "off_modes" in m:  # cards written before it was measured lack it
            print(f"  off every mode   {100 * m['off_modes']:.1f}%  (> 6 std from the nearest mode)")
        if "spread" in m:
            print(f"  mode spread      {m['spread']:.2f}  (RMS radius in a mode over the data's: 1 = as wide, "
                  "0 = one point)")
    elif "test_sets" in result:
        print(format_upscaling_card(result))
    elif "translation" in result["metrics"] or "a2b" in result["metrics"]:
        ref, m = result["reference"], result["metrics"]
        print(f"  {ref['n']} held-out pictures of {ref['dataset']} ({ref['split']})")
        for direction, d in (m.items() if "a2b" in m else [("", m)]):
            if direction:
                print(f"  {direction}:")
            print(format_translation_metrics(d))
        if result.get("extractor"):
            print(f"  features: {describe_extractor(result['extractor'])}")
    else:
        fx, ref, gen = result["extractor"], result["reference"], result["generated"]
        if "truncation" in gen:
            print(f"  samples drawn with truncation {gen['truncation']:g} (psi in W for StyleGAN)")
        print(f"  features: {describe_extractor(fx)}; {gen['n']} samples (seed {gen['seed']}) "
              f"vs {ref['dataset']} {ref['split']} ({ref['n']}); resize: {result['resize']}")
        print(format_image_metrics(result["metrics"]))
        if "code_nll" in result:
            c = result["code_nll"]
            print(f"  code NLL         {c['bits_per_code']:.4f} bits per code on the {c['split']} split ({c['n']} "
                  f"images x {c['codes_per_image']} codes)")
    print(f"card: {result['card_path']}")
    return 0


def format_translation_metrics(m: dict) -> str:
    """Lines for one direction of a translation card: paired scores, FIDs, the cycle error."""
    lines = []
    for name in ("translation", "identity"):
        if name in m:
            t = m[name]
            lines.append(f"  {name:<12} L1 {t['l1']['mean']:.4f}   PSNR {t['psnr']['mean']:.2f} dB   "
                         f"SSIM {t['ssim']['mean']:.4f}   (vs the true counterpart)")
    for key, what in (("fid", "FID of translations vs real targets"),
                      ("fid_identity", "FID of the inputs untranslated")):
        if key in m:
            f = m[key]
            lines.append(f"  {what:<36} {f['value']:.2f} (95% CI {f['ci_low']:.2f} - {f['ci_high']:.2f})")
    if "spread" in m:
        lines.append(f"  spread of translations / real targets {m['spread']:.3f} (features; near 0: collapse)")
    if "cycle" in m:
        lines.append(f"  cycle reconstruction L1 {m['cycle']['l1']['mean']:.4f}")
    return "\n".join(lines)


def format_upscaling_card(card: dict) -> str:
    """The perception-distortion table of a super-resolution card: one block per test set, a row
    for bicubic and for the model (PSNR and SSIM on Y and RGB, FID of crops)."""
    lines = [f"  x{card['scale']} {card['method']}; {card['protocol']}"]
    for name, t in card["test_sets"].items():
        lines.append(f"  {name} ({t['pictures']} pictures)" + (f": {', '.join(t['names'])}" if "names" in t else ""))
        lines.append(f"    {'':<8} {'PSNR-Y':>7} {'SSIM-Y':>7} {'PSNR-RGB':>9} {'SSIM-RGB':>9} {'FID':>8}")
        for kind in ("bicubic", "model"):
            m = t[kind]
            fid = f"{m['fid']['value']:8.2f}" if "fid" in m else f"{'-':>8}"
            lines.append(f"    {kind:<8} {m['psnr_y']['mean']:7.2f} {m['ssim_y']['mean']:7.4f} "
                         f"{m['psnr_rgb']['mean']:9.2f} {m['ssim_rgb']['mean']:9.4f} {fid}")
        lines.append(f"    gain over bicubic: {t['psnr_y_gain_db']:+.2f} dB PSNR-Y")
    if card.get("extractor"):
        lines.append(f"  features: {describe_extractor(card['extractor'])}")
    return "\n".join(lines)


def describe_extractor(fx: dict) -> str:
    """'mnist-lenet (canonical, sha256 3f2a1b...)'; a local retrain says its numbers are its own."""
    origin = fx.get("origin", "retrained locally")  # cards from before canonical networks: local
    text = f"{fx['name']} ({origin}, sha256 {fx['sha256'][:12]})"
    if origin == "retrained locally":
        text += " - not the canonical network: compare only with numbers from this same network"
    return text


def format_image_metrics(m: dict) -> str:
    """One aligned line per metric, with its interval or spread."""
    lines = []
    if "fid" in m:
        f = m["fid"]
        lines.append(f"  FID              {f['value']:.3f}  (95% CI {f['ci_low']:.3f} - {f['ci_high']:.3f})")
    if "kid" in m:
        lines.append(f"  KID              {m['kid']['value']:.5f} +- {m['kid']['std']:.5f}")
    if "pr" in m:
        lines.append(f"  precision/recall {m['pr']['precision']:.3f} / {m['pr']['recall']:.3f}  (k={m['pr']['k']})")
    if "dc" in m:
        lines.append(f"  density/coverage {m['dc']['density']:.3f} / {m['dc']['coverage']:.3f}  (k={m['dc']['k']})")
    if "score" in m:
        lines.append(f"  classifier score {m['score']['value']:.3f} +- {m['score']['std']:.3f}")
    if "modes" in m:
        lines.append(f"  modes            {m['modes']['modes']}/{m['modes']['modes_total']} over {m['modes']['n']} "
                     f"samples, KL to uniform {m['modes']['kl_uniform']:.3f}")
        if m["modes"].get("kl_channels"):  # cards written before the split lack it
            per_channel = " + ".join(f"{k:.3f}" for k in m["modes"]["kl_channels"])
            lines.append(f"    = each channel's digit balance {per_channel} + digits not independent "
                         f"{m['modes']['total_correlation']:.3f}")
        if m["modes"].get("clear_channels"):
            clear = " / ".join(f"{100 * c:.1f}%" for c in m["modes"]["clear_channels"])
            lines.append(f"    clear digits (p >= 0.9) per channel {clear}")
    if "conditional_accuracy" in m:
        lines.append(f"  conditional acc  {100 * m['conditional_accuracy']['value']:.2f}% of samples classified "
                     "as the class asked for")
    if "code_purity" in m:
        p = m["code_purity"]
        lines.append(f"  code purity      {100 * p['value']:.2f}% of samples are their code's majority class; "
                     f"codes -> classes {p['code_to_class']} ({p['classes_covered']} classes)")
    if "classes" in m:
        c = m["classes"]
        lines.append(f"  classes seen     {c['classes_seen']}/{c['classes_total']}, "
                     f"KL to uniform {c['kl_uniform']:.4f}")
        if "confident" in c:  # cards written before it was measured lack it
            lines.append(f"  clear samples    {100 * c['confident']:.1f}% have a class of p >= {c['confident_p']}")
    return "\n".join(lines)


def cmd_evaluator(args) -> int:
    from ganforge.evaluation import reference_floor
    from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor, train_extractor

    if args.evaluator_command == "check":
        return _check([DEFAULT_FOR_DATASET.get(d, d) for d in args.dataset], args)
    name = DEFAULT_FOR_DATASET.get(args.dataset, args.dataset)
    if args.evaluator_command == "train":
        card = train_extractor(name, epochs=args.epochs, seed=args.seed, log=_err)
        same = ("identical to the canonical network" if card["canonical"] else
                "differs from the canonical network (another CPU, torch build, seed or epoch count)")
        print(json.dumps(card) if args.json else f"{name}:local: test accuracy {card['test_accuracy']:.4f}, "
              f"sha256 {card['sha256'][:12]}; {same}. Use it with --extractor {name}:local")
        return 0
    if args.evaluator_command == "info":
        card = load_extractor(name).card
        print(json.dumps(card) if args.json else "\n".join(f"{k}: {v}" for k, v in card.items()))
        return 0
    base = name.split(":")[0]
    spec = load_extractor(base).spec
    dataset = args.dataset if args.dataset in spec.domain else spec.dataset
    floor = reference_floor(dataset, name, log=_err)
    if args.json:
        print(json.dumps(floor))
    else:
        print(f"{floor['compared']} against {floor['reference']}, features {describe_extractor(floor['extractor'])}:")
        print(format_image_metrics(floor["metrics"]))
    return 0


def _check(names: list[str], args) -> int:
    from ganforge.evaluation import check_extractor, vendor_gap
    from ganforge.report.plots import plot_disturbance_check

    results = [check_extractor(name, n=args.n, log=lambda *_: None) for name in names]
    gaps = {name: vendor_gap(name, log=lambda *_: None) for name in names if name.split(":")[0] == "emoji-convnet"}
    plot_disturbance_check(results, Path(args.output))
    if args.json:
        print(json.dumps({"figure": args.output, "results": results, "vendor_gap": gaps}))
        return 0
    for result in results:
        print(f"{describe_extractor(result['extractor'])}: FID of {result['n']} held-out images vs "
              f"{result['reference']}")
        for kind, c in result["curves"].items():
            values = "  ".join(f"{v:.1f}" for v in c["fid"])
            print(f"  {kind:<16} {'rises' if c['monotonic'] else 'NOT MONOTONIC'}:  {values}   ({c['unit']}: "
                  f"{', '.join(f'{v:g}' for v in c['levels'])})")
    for name, gap in gaps.items():
        print(f"{name}: two vendors' drawings of the same test emoji vs two halves of one vendor's "
              f"(FID, n per side):")
        for p in gap["pairs"]:
            print(f"  {p['a']:>8} vs {p['b']:<8} across {p['across']:6.1f}   within {p['a']} {p['within_a']:5.1f}, "
                  f"within {p['b']} {p['within_b']:5.1f}   (n={p['n']});  KID across {p['kid_across']:.3f}, "
                  f"within {p['kid_within_a']:.3f} / {p['kid_within_b']:.3f}")
        print(f"  smallest across / within ratio: {gap['min_ratio']:.1f}")
    print(f"figure: {args.output}")
    return 0


def cmd_report(args) -> int:
    from ganforge.report.html import write_report

    if not Path(args.run).is_dir():
        raise GanforgeError(f"no run directory {args.run}; pass the folder that `ganforge train` wrote")
    path = write_report(Path(args.run), Path(args.output) if args.output else None)
    print(json.dumps({"report": str(path)}) if args.json else f"wrote {path}")
    return 0
