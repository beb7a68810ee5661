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
    if args.from_image is not None or args.to_image is not None:  # between the codes of two images
        from ganforge.autoencoding import interpolate_images

        if args.from_image is None or args.to_image is None:
            raise GanforgeError("give both --from-image and --to-image (test-split indices or image files)")
        first, second = (_image_arg(run, v) for v in (args.from_image, args.to_image))
        images = interpolate_images(run, first, second, args.steps)
        ends = (args.from_image, args.to_image)
    else:
        if args.from_seed is None or args.to_seed is None:
            raise GanforgeError("give --from and --to seeds (or, for an autoencoder, --from-image and --to-image)")
        if not run.method.has_prior:
            raise GanforgeError("an autoencoder (method ae) has no prior to draw seeds from; interpolate between two "
                                "images with --from-image and --to-image")
        images = interpolate(run, args.from_seed, args.to_seed, args.steps, args.slerp, args.class_)
        ends = (args.from_seed, args.to_seed)
    save_grid(images, args.output, nrow=len(images))
    result = {"path": args.output, "from": ends[0], "to": ends[1], "steps": args.steps,
              "path_kind": "slerp" if args.slerp else "linear"}
    print(json.dumps(result) if args.json else
          f"wrote a {args.steps}-image {result['path_kind']} strip to {args.output}")
    return 0


def _image_arg(run, value: str):
    """A test-split index ('17') or an image file, as one image in [-1, 1]."""
    from ganforge.autoencoding import load_split, read_images

    if value.isdigit():
        x, _ = load_split(run, "test")
        if int(value) >= len(x):
            raise GanforgeError(f"test image {value} does not exist; the test split has {len(x)} images")
        return x[int(value)]
    return read_images([Path(value)], run)[0]


def cmd_reconstruct(args) -> int:
    from ganforge import api
    from ganforge.autoencoding import reconstruct
    from ganforge.report.images import save_grid

    run = api.load_run(args.run_dir, step=args.step)
    if args.n < 1:
        raise GanforgeError(f"-n must be at least 1, got {args.n}")
    out = reconstruct(run, args.split, args.n, args.seed)
    save_grid(out["grid"], args.output, nrow=8)
    result = {"path": args.output, "split": args.split, "n": out["n"], "seed": args.seed, "mse": out["mse"],
              "step": run.step}
    print(json.dumps(result) if args.json else
          f"wrote {out['n']} {args.split} images (odd rows) and their reconstructions (even rows) to {args.output}; "
          f"mean squared error per pixel {out['mse']:.4f} (grey levels in [0, 1])")
    return 0


def cmd_arithmetic(args) -> int:
    from ganforge import api
    from ganforge.autoencoding import arithmetic
    from ganforge.report.images import save_grid

    run = api.load_run(args.run_dir, step=args.step)
    out = arithmetic(run, args.a, args.b, args.c)
    save_grid(out["images"], args.output, nrow=4)
    result = {"path": args.output, "a": out["groups"][0], "b": out["groups"][1], "c": out["groups"][2],
              "classified_as": out.get("classified_as"), "confidence": out.get("confidence")}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"wrote decode(mean a), decode(mean b), decode(mean c), decode(a - b + c) to {args.output}")
        if "classified_as" in out:
            labels = ["a", "b", "c", "a - b + c"]
            print("  the dataset's classifier reads them as: " + ", ".join(
                f"{n} -> {k} ({100 * p:.0f}%)" for n, k, p in zip(labels, out["classified_as"], out["confidence"],
                                                                    strict=True)))
    return 0


def cmd_likelihood(args) -> int:
    from ganforge import api
    from ganforge.autoencoding import likelihood

    run = api.load_run(args.run_dir, step=args.step)
    card = likelihood(run, args.k, args.n, args.seed, log=_err if not args.json else (lambda *_: None))
    card.update({"run": str(run.run_dir), "step": run.step})
    subset = f"_n{card['n']}" if args.n is not None else ""  # a subset never overwrites the full card
    path = run.run_dir / "eval" / f"likelihood_step_{run.step:09d}_k{args.k}{subset}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(card, indent=2))
    card["card_path"] = str(path)
    print(json.dumps(card) if args.json else
          f"test NLL {card['nll']:.2f} +- {card['nll_se']:.2f} nats, test -ELBO {card['neg_elbo']:.2f} +- "
          f"{card['neg_elbo_se']:.2f} nats ({card['n']} images, k={card['k']}, {card['time_s']:.0f} s); card: {path}")
    return 0


def cmd_anomaly(args) -> int:
    from ganforge import anomaly

    if args.action == "fit":
        from ganforge.config import load_config

        overrides = list(args.set or [])
        if args.normal_class is not None and args.normal_folder:
            raise GanforgeError("give --normal-class or --normal-folder, not both")
        if args.normal_class is not None:
            overrides.append(f"data.classes=[{args.normal_class}]")
        elif args.normal_folder:
            overrides += ["data.source=folder", f"data.path={args.normal_folder}"]
        else:
            raise GanforgeError("say what is normal: --normal-class K (a class of the preset's dataset) or "
                                "--normal-folder DIR (a folder of normal images)")
        cfg = load_config(args.preset, overrides)
        out = Path(args.out) if args.out else Path("runs") / f"anomaly-{cfg.name}-" \
            f"{args.normal_class if args.normal_class is not None else Path(args.normal_folder).name}"
        record = anomaly.fit(cfg, out, args.fpr, overwrite=args.overwrite, progress=not args.quiet, log=_err)
        print(json.dumps(record) if args.json else
              f"trained {out} on {record['n_train']} normal images; threshold {record['threshold']:.4g} "
              f"({record['score']}) flags {100 * record['measured_fpr']:.1f}% of the {record['n_calibration']} "
              f"held-out normal images (asked: {100 * args.fpr:.1f}%)")
        return 0
    if args.action == "score":
        from ganforge import api

        run = api.load_run(args.run_dir)
        if args.fpr is not None:  # recalibrate on the run's held-out normal images
            from ganforge.data import load_dataset

            anomaly.check_fpr(args.fpr)
            held = load_dataset(run.config.data, log=lambda *_: None, part="holdout")
            anomaly.calibrate(run, held.x.float() / 127.5 - 1, args.fpr)
        results = anomaly.score_files(run, [Path(p) for p in args.paths], Path(args.maps) if args.maps else None,
                                      args.resize)
        threshold = anomaly.load_calibration(run)["threshold"]
        if args.json:
            print(json.dumps({"threshold": threshold, "results": results}))
        else:
            for r in results:
                print(f"{'ANOMALY' if r['anomaly'] else 'normal '}  {r['score']:10.4g}  {r['file']}")
            print(f"{sum(r['anomaly'] for r in results)} of {len(results)} flagged (threshold {threshold:.4g})"
                  + (f"; error maps in {args.maps}" if args.maps else ""))
        return 0
    # one-class
    classes = [int(c) for c in args.classes.split(",")] if args.classes else list(range(10))
    summary = anomaly.one_class(args.preset, classes, Path(args.out), list(args.set or []), args.fpr,
                                log=_err if not args.json else (lambda *_: None))
    if args.json:
        print(json.dumps(summary))
    else:
        print("class  AUROC %")
        for r in summary["classes"]:
            print(f"{r['class']:>5}  {100 * r['auroc']:6.1f}")
        print(f" mean  {100 * summary['mean_auroc']:6.1f}   (ROC curves: {summary['roc_plot']})")
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
    it.add_argument("--from", dest="from_seed", type=int, default=None, help="seed of the first latent")
    it.add_argument("--to", dest="to_seed", type=int, default=None, help="seed of the last latent")
    it.add_argument("--from-image", default=None, help="autoencoders: a test-split index or an image file")
    it.add_argument("--to-image", default=None, help="autoencoders: a test-split index or an image file")
    it.add_argument("--steps", type=int, default=10)
    it.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    it.add_argument("--class", dest="class_", type=int, default=None, help="conditional runs: the class")
    it.add_argument("--step", type=int, default=None)
    it.add_argument("-o", "--output", default="interpolation.png")
    it.add_argument("--json", action="store_true")
    it.set_defaults(func=cmd_interpolate)

    rc = sub.add_parser("reconstruct", help="autoencoders: images beside their reconstructions")
    rc.add_argument("run_dir")
    rc.add_argument("--split", default="test", choices=["train", "test"])
    rc.add_argument("-n", type=int, default=32)
    rc.add_argument("--seed", type=int, default=0)
    rc.add_argument("--step", type=int, default=None)
    rc.add_argument("-o", "--output", default="reconstructions.png")
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func=cmd_reconstruct)

    ar = sub.add_parser("arithmetic", help="autoencoders: decode mean(a) - mean(b) + mean(c) of image groups")
    ar.add_argument("run_dir")
    for g in ("a", "b", "c"):
        ar.add_argument(f"--{g}", required=True, help="a class of the test split ('7' or 'class:7'), or image "
                        "files / a folder, comma-separated")
    ar.add_argument("--step", type=int, default=None)
    ar.add_argument("-o", "--output", default="arithmetic.png")
    ar.add_argument("--json", action="store_true")
    ar.set_defaults(func=cmd_arithmetic)

    lk = sub.add_parser("likelihood", help="VAEs: test ELBO and importance-sampled NLL on binarised test images")
    lk.add_argument("run_dir")
    lk.add_argument("-k", type=int, default=5000, help="importance samples per image (5,000 for reported numbers)")
    lk.add_argument("-n", type=int, default=None, help="only the first n test images (default: all)")
    lk.add_argument("--seed", type=int, default=0)
    lk.add_argument("--step", type=int, default=None)
    lk.add_argument("--json", action="store_true")
    lk.set_defaults(func=cmd_likelihood)

    an = sub.add_parser("anomaly", help="anomaly detection with autoencoders")
    ansub = an.add_subparsers(dest="action", required=True)
    af = ansub.add_parser("fit", help="train on normal images and calibrate a threshold")
    af.add_argument("--preset", default="ae-mnist-anomaly",
                    help="an ae or vae preset or YAML file (default ae-mnist-anomaly)")
    af.add_argument("--normal-class", type=int, default=None, help="the normal class of the preset's dataset")
    af.add_argument("--normal-folder", default=None, help="or: a folder of normal images")
    af.add_argument("--fpr", type=float, default=0.05, help="false-positive rate the threshold allows (0..1)")
    af.add_argument("--set", action="append", metavar="KEY=VALUE")
    af.add_argument("--out", default=None)
    af.add_argument("--overwrite", action="store_true")
    af.add_argument("--quiet", action="store_true")
    af.add_argument("--json", action="store_true")
    af.set_defaults(func=cmd_anomaly)
    sc = ansub.add_parser("score", help="score images, flag anomalies, write per-pixel error maps")
    sc.add_argument("run_dir")
    sc.add_argument("paths", nargs="+", help="image files or folders")
    sc.add_argument("--maps", default=None, help="folder for the error maps (original | reconstruction | error)")
    sc.add_argument("--fpr", type=float, default=None, help="recalibrate the threshold at this rate first")
    sc.add_argument("--resize", action="store_true", help="convert images of another size or colour mode")
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(func=cmd_anomaly)
    oc = ansub.add_parser("one-class", help="the one-class protocol: train on each class, AUROC on the test split")
    oc.add_argument("--preset", default="ae-mnist-anomaly")
    oc.add_argument("--classes", default=None, help="comma-separated classes (default 0..9)")
    oc.add_argument("--fpr", type=float, default=0.05)
    oc.add_argument("--set", action="append", metavar="KEY=VALUE")
    oc.add_argument("--out", default="runs/one-class")
    oc.add_argument("--json", action="store_true")
    oc.set_defaults(func=cmd_anomaly)

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
