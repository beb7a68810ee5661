"""The ganforge command line.

    ganforge train PRESET_OR_YAML [--set key=value ...] [--out DIR]
    ganforge train --resume RUN_DIR [--set train.steps=N]
    ganforge sample RUN_DIR -n 64 --seed 0 -o grid.png
    ganforge evaluate RUN_DIR [--json]
    ganforge data fetch mnist|fashion-mnist|digits
    ganforge presets

User mistakes print one line, ``ganforge: error: ...``, and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ganforge.errors import GanforgeError


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_train(args) -> int:
    from ganforge import api
    from ganforge.config import describe_config, load_config

    if args.help_config:
        print(describe_config())
        return 0
    overrides = list(args.set or [])
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.resume:
        if args.config:
            raise GanforgeError("give either a preset/config or --resume RUN_DIR, not both")
        run_dir = api.resume(args.resume, overrides, progress=not args.quiet, log=_err)
    else:
        if not args.config:
            raise GanforgeError("name a preset or YAML file to train (see `ganforge presets`), or "
                                "--resume RUN_DIR")
        cfg = load_config(args.config, overrides)
        if args.dry_run:
            print(cfg.to_json())
            return 0
        run_dir = api.train(cfg, args.out, overwrite=args.overwrite, progress=not args.quiet, log=_err)
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    if args.json:
        print(json.dumps({"run_dir": str(run_dir), **summary}))
    else:
        print((Path(run_dir) / "summary.txt").read_text(), end="")
        print(f"run directory: {run_dir}")
    return 0


def cmd_sample(args) -> int:
    from ganforge import api

    run = api.load_run(args.run_dir, device=args.device, step=args.step)
    nrow = args.nrow
    if run.n_classes and args.class_ is None and run.info["is_image"]:
        # A conditional run without --class: one row per class, the same z down each column.
        from ganforge.train.loop import class_grid_latents, generate

        rows = min(run.n_classes, 10)
        z, y, nrow = class_grid_latents(run.method, rows, max(1, args.n // rows), args.seed, run.device)
        samples = generate(run.generator, z, y)
    else:
        samples = run.sample(args.n, seed=args.seed, label=args.class_, truncation=args.truncation)
    out = Path(args.output)
    if run.info["is_image"]:
        from ganforge.report.images import save_grid

        save_grid(samples, out, nrow=nrow)
    else:
        from ganforge.data import load_dataset
        from ganforge.report.plots import plot_2d

        real = load_dataset(run.config.data, log=lambda *_: None).x[: len(samples)]
        plot_2d(real, samples, run.models["D"], out, title=f"{run.config.name}, step {run.step}",
                probabilistic=run.config.method.loss in ("ns", "mm"))
    result = {"path": str(out), "n": len(samples), "seed": args.seed, "step": run.step,
              "checkpoint": run.checkpoint.name, "class": args.class_}
    print(json.dumps(result) if args.json else
          f"wrote {len(samples)} samples (seed {args.seed}, step {run.step}) to {out}")
    return 0


def cmd_interpolate(args) -> int:
    from ganforge import api
    from ganforge.latent import interpolate
    from ganforge.report.images import save_grid

    run = api.load_run(args.run_dir, step=args.step)
    if not run.info["is_image"]:
        raise GanforgeError("interpolate draws image strips; this run generates 2-D points")
    images = interpolate(run, args.from_seed, args.to_seed, args.steps, args.slerp, args.class_)
    save_grid(images, args.output, nrow=len(images))
    result = {"path": args.output, "from": args.from_seed, "to": args.to_seed, "steps": args.steps,
              "path_kind": "slerp" if args.slerp else "linear"}
    print(json.dumps(result) if args.json else
          f"wrote a {args.steps}-image {result['path_kind']} strip to {args.output}")
    return 0


def cmd_directions(args) -> int:
    from ganforge import api
    from ganforge.latent import find_direction

    run = api.load_run(args.run_dir, step=args.step)
    record = find_direction(run, args.attribute, n=args.n, seed=args.seed, name=args.name, log=_err)
    record.pop("vector")
    if args.json:
        print(json.dumps(record))
    else:
        print(f"direction '{record['name']}': linear probe of {record['score']} with k = {args.attribute} on "
              f"{record['n']} samples, R^2 {record['r2']:.3f}; saved to {record['path']}")
    return 0


def cmd_edit(args) -> int:
    from ganforge import api
    from ganforge.latent import edit, parse_amounts
    from ganforge.report.images import save_grid

    run = api.load_run(args.run_dir, step=args.step)
    result = edit(run, args.seed, args.direction, parse_amounts(args.amount), log=_err)
    images = result.pop("images")
    save_grid(images, args.output, nrow=len(images))
    result["path"] = args.output
    if args.json:
        print(json.dumps(result))
        return 0
    k = result["attribute"]
    probs = " ".join(f"{p:.2f}" for p in result["strip_target_prob"])
    print(f"wrote {len(images)} edits of seed {args.seed} along '{args.direction}' to {args.output}")
    print(f"  p(class {k}) along the strip: {probs}")
    print(f"  entanglement over {result['population']} latents: p(class {k}) moves {result['target_slope']:+.3f} "
          f"per unit; other classes {result['others_mean_abs_slope']:.3f} on average (most: class "
          f"{result['most_moved_other']}, {result['others_max_abs_slope']:.3f})")
    return 0


def cmd_calc(args) -> int:
    from ganforge.calc import conv_volumes, gan_losses

    if args.calc_command == "gan-loss":
        result = gan_losses(args.real, args.fake, args.log_base)
        if args.json:
            print(json.dumps(result))
            return 0
        labels = {"L_D_real": "L_D_real = -E[log D(x)]", "L_D_fake": "L_D_fake = -E[log(1 - D(G(z)))]",
                  "L_D": "L_D", "L_G_ns": "L_G non-saturating = -E[log D(G(z))]",
                  "L_G_mm": "L_G saturating = E[log(1 - D(G(z)))]"}
        print(f"GAN losses with log base {args.log_base} (values in brackets are the logs)")
        for key, label in labels.items():
            print(f"  {label}\n      = {result['steps'][key]}\n      = {result['values'][key]:.4f}")
        return 0
    rows = conv_volumes(args.input, args.layer)
    if args.json:
        print(json.dumps({"input": args.input, "layers": rows}))
        return 0
    print(f"{'layer':<24}{'input':>14}{'output':>14}{'params':>12}{'FLOPs':>16}   how")
    for r in rows:
        print(f"{r['layer']:<24}{r['input']:>14}{r['output']:>14}{r['params']:>12,}{r['flops']:>16,}   {r['formula']}")
    print(f"{'total':<52}{sum(r['params'] for r in rows):>12,}{sum(r['flops'] for r in rows):>16,}")
    return 0


def cmd_summary(args) -> int:
    from ganforge.calc import model_summary

    if Path(args.target, "config.json").is_file():  # a run directory
        from ganforge import api

        run = api.load_run(args.target)
        method, models, shape = run.method, run.models, tuple(run.info["sample_shape"])
    else:  # a preset or YAML file: build the untrained networks for the data's shape
        import torch

        from ganforge.config import load_config
        from ganforge.data import load_dataset
        from ganforge.train.loop import build_networks, n_classes_of

        cfg = load_config(args.target, args.set or [])
        data = load_dataset(cfg.data, log=_err)
        shape = data.sample_shape
        method, models = build_networks(cfg, shape, data.is_image, torch.device("cpu"), n_classes_of(data))
    n_classes = getattr(models["G"], "n_classes", 0)
    table = model_summary(models, shape, method.z_dim, n_classes)
    if args.json:
        print(json.dumps(table))
        return 0
    for name, rows in table.items():
        print(f"{name}: {sum(p.numel() for p in models[name].parameters()):,} parameters")
        for r in rows:
            shape_text = "x".join(map(str, r["output"]))
            print(f"  {r['layer']:<28}{r['type']:<18}{shape_text:>14}{r['params']:>12,}")
    return 0


def cmd_report(args) -> int:
    from ganforge.report.html import write_report

    if not Path(args.run).is_dir():
        raise GanforgeError(f"no run directory {args.run}; pass the folder that `ganforge train` wrote")
    path = write_report(Path(args.run), Path(args.output) if args.output else None)
    print(json.dumps({"report": str(path)}) if args.json else f"wrote {path}")
    return 0


def cmd_demo(args) -> int:
    from ganforge.demos import invert_2d_classifier, invert_image_classifier, plot_inversion
    from ganforge.metrics.features import load_extractor

    if not 0 <= args.class_ <= 9:
        raise GanforgeError(f"--class must be a digit 0..9, got {args.class_}")
    image = invert_image_classifier(load_extractor("mnist-lenet", log=_err), args.class_, seed=args.seed)
    toy = invert_2d_classifier(seed=args.seed)
    gan_sample = None
    if args.run:
        from ganforge import api

        run = api.load_run(args.run)
        gan_sample = run.sample(1, seed=args.seed, label=args.class_ if run.n_classes else None)
    plot_inversion(image, toy, args.output, gan_sample)
    result = {"path": args.output, "class": args.class_, "image_start_prob": image["start_prob"],
              "image_final_prob": image["final_prob"], "toy_start_prob": toy["start_prob"],
              "toy_final_prob": toy["final_prob"], "toy_final_radius": toy["final_radius"],
              "toy_distance_from_data": toy["distance_from_data"],
              "toy_classifier_accuracy": toy["classifier_accuracy"]}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"MNIST classifier: noise pushed towards '{args.class_}' is now classified {args.class_} with "
          f"p = {image['final_prob']:.3f} (from {image['start_prob']:.3f}), yet it looks like noise")
    print(f"2-D classifier ({100 * toy['classifier_accuracy']:.1f}% accurate on the ring): a point at mode 0 "
          f"pushed to maximise p(class 0) reaches p = {toy['final_prob']:.3f} at radius "
          f"{toy['final_radius']:.1f}, {toy['distance_from_data']:.1f} away from any data (the data lie at radius 1)")
    print(f"picture: {args.output}")
    return 0


def cmd_evaluate(args) -> int:
    from ganforge import api

    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    result = api.evaluate(args.run_dir, n=args.n, seed=args.seed, metrics=metrics, ref_split=args.ref,
                          extractor=args.extractor, resize=args.resize, step=args.step, log=_err)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"run {result['run']} at step {result['step']} ({result['kimg']:.1f} kimg)")
    for k, v in result.get("training", {}).items():
        print(f"  {k:<16} {v:.4f}")
    if "modes" in result:
        m = result["modes"]
        print(f"  modes captured   {m['modes']}/{m['modes_total']}")
        print(f"  high quality     {100 * m['high_quality']:.1f}%  ({m['n']} samples, seed {m['seed']})")
        print(f"  reverse KL       {m['reverse_kl']:.4f}")
    else:
        fx, ref, gen = result["extractor"], result["reference"], result["generated"]
        print(f"  features: {fx['name']} (sha256 {fx['sha256'][:12]}); {gen['n']} samples (seed {gen['seed']}) "
              f"vs {ref['dataset']} {ref['split']} ({ref['n']}); resize: {result['resize']}")
        print(format_image_metrics(result["metrics"]))
    print(f"card: {result['card_path']}")
    return 0


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
    if "conditional_accuracy" in m:
        lines.append(f"  conditional acc  {100 * m['conditional_accuracy']['value']:.2f}% of samples classified "
                     "as the class asked for")
    if "classes" in m:
        c = m["classes"]
        lines.append(f"  classes seen     {c['classes_seen']}/{c['classes_total']}, "
                     f"KL to uniform {c['kl_uniform']:.4f}")
    return "\n".join(lines)


def cmd_evaluator(args) -> int:
    from ganforge.evaluation import reference_floor
    from ganforge.metrics.features import DEFAULT_FOR_DATASET, load_extractor, train_extractor

    name = DEFAULT_FOR_DATASET.get(args.dataset, args.dataset)
    if args.evaluator_command == "train":
        card = train_extractor(name, epochs=args.epochs, log=_err)
        print(json.dumps(card) if args.json else f"{name}: test accuracy {card['test_accuracy']:.4f}, "
              f"sha256 {card['sha256'][:12]}")
        return 0
    if args.evaluator_command == "info":
        card = load_extractor(name, train_if_missing=False).card
        print(json.dumps(card) if args.json else "\n".join(f"{k}: {v}" for k, v in card.items()))
        return 0
    dataset = args.dataset if args.dataset in DEFAULT_FOR_DATASET else load_extractor(name).spec.dataset
    floor = reference_floor(dataset, name, log=_err)
    if args.json:
        print(json.dumps(floor))
    else:
        print(f"{floor['compared']} against {floor['reference']}, features {name}:")
        print(format_image_metrics(floor["metrics"]))
    return 0


def cmd_data(args) -> int:
    from ganforge.data import fetch
    from ganforge.data.cache import cache_dir

    fetch(args.name, force=args.force, log=_err)
    info = {"dataset": args.name, "cache": str(cache_dir())}
    print(json.dumps(info) if args.json else f"{args.name} is cached in {cache_dir()}")
    return 0


def cmd_presets(args) -> int:
    from ganforge.config import list_presets

    presets = list_presets()
    if args.json:
        print(json.dumps(presets))
    else:
        width = max(map(len, presets))
        for name, desc in presets.items():
            print(f"{name:<{width}}  {desc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ganforge import __version__

    p = argparse.ArgumentParser(prog="ganforge", description="Train, evaluate and understand generative "
                                "image models.")
    p.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a preset or YAML config, or resume a run")
    t.add_argument("config", nargs="?", help="preset name (see `ganforge presets`) or YAML file")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value "
                   "(repeatable), e.g. --set train.steps=2000")
    t.add_argument("--out", help="run directory (default: runs/NNNNN-<name>)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], help="shorthand for --set train.device=")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    t.add_argument("--help-config", action="store_true", help="list every config key and exit")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a run's latest checkpoint")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-o", "--output", default="samples.png", help="PNG to write")
    s.add_argument("--nrow", type=int, default=None, help="images per row")
    s.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    s.add_argument("--step", type=int, default=None, help="use the checkpoint saved at this step")
    s.add_argument("--truncation", type=float, default=None,
                   help="redraw latent coordinates beyond +-T (truncation trick; smaller = less varied)")
    s.add_argument("--class", dest="class_", type=int, default=None,
                   help="conditional runs: draw this class (default: one row per class)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("evaluate", help="print a run's metrics and write an evaluation card")
    e.add_argument("run_dir")
    e.add_argument("--metrics", help="comma-separated: fid,kid,pr,dc,score,classes (images; default all)")
    e.add_argument("-n", type=int, default=None, help="samples to draw (images: 10000; 2-D: train.eval_samples)")
    e.add_argument("--ref", default="test", choices=["train", "test"], help="reference split (default test)")
    e.add_argument("--extractor", help="feature network (default: the one trained on the run's dataset)")
    e.add_argument("--resize", action="store_true", help="convert images to the extractor's input size")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--step", type=int, default=None, help="evaluate the checkpoint saved at this step")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    ev = sub.add_parser("evaluator", help="the feature networks behind the image metrics")
    evsub = ev.add_subparsers(dest="evaluator_command", required=True, metavar="ACTION")
    for action, text in (("train", "train (or retrain) the feature network for a dataset"),
                         ("info", "print the stored network's card (accuracy, sha256)"),
                         ("floor", "metrics of the test split against the train split")):
        a = evsub.add_parser(action, help=text)
        a.add_argument("dataset", help="mnist or fashion-mnist (or an extractor name)")
        a.add_argument("--json", action="store_true")
        if action == "train":
            a.add_argument("--epochs", type=int, default=None)
        a.set_defaults(func=cmd_evaluator)

    it = sub.add_parser("interpolate", help="a strip of images between the latents of two seeds")
    it.add_argument("run_dir")
    it.add_argument("--from", dest="from_seed", type=int, required=True)
    it.add_argument("--to", dest="to_seed", type=int, required=True)
    it.add_argument("--steps", type=int, default=10)
    it.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    it.add_argument("--class", dest="class_", type=int, default=None, help="conditional runs: the class")
    it.add_argument("--step", type=int, default=None)
    it.add_argument("-o", "--output", default="interpolation.png")
    it.add_argument("--json", action="store_true")
    it.set_defaults(func=cmd_interpolate)

    di = sub.add_parser("directions", help="find a latent direction for a classifier class (linear probe)")
    di.add_argument("run_dir")
    di.add_argument("--attribute", type=int, required=True, help="evaluator class, e.g. 7 for 'looks like a 7'")
    di.add_argument("--name", default=None, help="name to save it under (default class-K)")
    di.add_argument("-n", type=int, default=5000, help="samples for the probe")
    di.add_argument("--seed", type=int, default=0)
    di.add_argument("--step", type=int, default=None)
    di.add_argument("--json", action="store_true")
    di.set_defaults(func=cmd_directions)

    ed = sub.add_parser("edit", help="move one latent along a saved direction; report entanglement")
    ed.add_argument("run_dir")
    ed.add_argument("--seed", type=int, default=0)
    ed.add_argument("--direction", required=True)
    ed.add_argument("--amount", default="-3:3:7", help="START:STOP:COUNT (default -3:3:7)")
    ed.add_argument("--step", type=int, default=None)
    ed.add_argument("-o", "--output", default="edit.png")
    ed.add_argument("--json", action="store_true")
    ed.set_defaults(func=cmd_edit)

    su = sub.add_parser("summary", help="each network's layers, output shapes and parameter counts")
    su.add_argument("target", help="a preset, YAML file or run directory")
    su.add_argument("--set", action="append", metavar="KEY=VALUE")
    su.add_argument("--json", action="store_true")
    su.set_defaults(func=cmd_summary)

    rp = sub.add_parser("report", help="write a run's self-contained report.html (curves, samples, alerts)")
    rp.add_argument("run", help="run directory")
    rp.add_argument("-o", "--output", help="where to write the page (default RUN/report.html)")
    rp.add_argument("--json", action="store_true", help="print the path as JSON")
    rp.set_defaults(func=cmd_report)

    ca = sub.add_parser("calc", help="the hand calculations: GAN losses, convolution volumes")
    casub = ca.add_subparsers(dest="calc_command", required=True, metavar="WHAT")
    gl = casub.add_parser("gan-loss", help="GAN losses from discriminator outputs, step by step")
    gl.add_argument("--real", type=float, nargs="+", required=True, help="D(x) for real samples, in (0, 1)")
    gl.add_argument("--fake", type=float, nargs="+", required=True, help="D(G(z)) for fakes, in (0, 1)")
    gl.add_argument("--log-base", default="10", choices=["10", "e", "2"])
    gl.add_argument("--json", action="store_true")
    gl.set_defaults(func=cmd_calc)
    cv = casub.add_parser("conv", help="output volumes, parameters and FLOPs of conv/pool/fc layers")
    cv.add_argument("--input", required=True, help="HxWxC, e.g. 227x227x3")
    cv.add_argument("--layer", action="append", required=True,
                    help="conv:FILTERS:KERNEL[:stride=S][:pad=P], pool:KERNEL[:stride=S][:pad=P] or fc:UNITS")
    cv.add_argument("--json", action="store_true")
    cv.set_defaults(func=cmd_calc)

    dm = sub.add_parser("demo", help="teaching demonstrations")
    dmsub = dm.add_subparsers(dest="demo_command", required=True, metavar="NAME")
    ci = dmsub.add_parser("classifier-inversion", help="why a classifier can't generate")
    ci.add_argument("--class", dest="class_", type=int, default=7, help="digit to ask for (default 7)")
    ci.add_argument("--run", default=None, help="a run to show a GAN sample beside (e.g. runs/cgan-mnist)")
    ci.add_argument("--seed", type=int, default=0)
    ci.add_argument("-o", "--output", default="classifier_inversion.png")
    ci.add_argument("--json", action="store_true")
    ci.set_defaults(func=cmd_demo)

    d = sub.add_parser("data", help="fetch and cache datasets")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = dsub.add_parser("fetch", help="fetch a dataset into the cache")
    f.add_argument("name", help="mnist, fashion-mnist or digits")
    f.add_argument("--force", action="store_true", help="fetch again even when cached")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_data)

    pr = sub.add_parser("presets", help="list the shipped presets")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_presets)
    return p


def _join_negative_values(argv: list[str]) -> list[str]:
    """'--amount -3:3:7' -> '--amount=-3:3:7' (argparse would read -3:3:7 as an option)."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--amount" and arg.startswith("-"):
            out[-1] = f"--amount={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_negative_values(sys.argv[1:] if argv is None else list(argv)))
    try:
        return args.func(args)
    except GanforgeError as exc:
        _err(f"ganforge: error: {exc}")
        return 1
    except KeyboardInterrupt:
        _err("ganforge: interrupted")
        return 130
    except OSError as exc:  # disk full, permissions, a vanished file: say which, without a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        _err(f"ganforge: error: {exc.strerror or exc}{where}; check free space and permissions")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
