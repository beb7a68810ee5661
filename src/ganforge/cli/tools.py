"""Teaching tools and housekeeping: `calc`, `summary`, `demo` and `data`."""

from __future__ import annotations

import json
from pathlib import Path

from ganforge.cli.common import _err
from ganforge.errors import GanforgeError


def add_parsers(sub) -> None:
    su = sub.add_parser("summary", help="each network's layers, output shapes and parameter counts")
    su.add_argument("target", help="a preset, YAML file or run directory")
    su.add_argument("--set", action="append", metavar="KEY=VALUE")
    su.add_argument("--json", action="store_true")
    su.set_defaults(func=cmd_summary)

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
    f.add_argument("name", help="mnist, fashion-mnist, digits, emoji-<google|twitter|apple|facebook|emojione|all> "
                                "or icons-oxygen")
    f.add_argument("--force", action="store_true", help="fetch again even when cached")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_data)
    i = dsub.add_parser("info", help="where a dataset comes from, its licence and split, and whether it is cached")
    i.add_argument("name", help="a fetchable dataset, e.g. emoji-google")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_data)
    e = dsub.add_parser("export", help="write a dataset's pictures as PNG files, one sub-folder per class")
    e.add_argument("name", help="a fetchable image dataset, e.g. emoji-google")
    e.add_argument("folder", help="a new (or empty) folder to write into")
    e.add_argument("--split", choices=["train", "test"], default="train")
    e.add_argument("--background", default="white", help="colour under transparent pixels (white, black, "
                   "grey, #rrggbb)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_data)


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
    from ganforge import api
    from ganforge.calc import model_summary

    if Path(args.target, "config.json").is_file():  # a run directory
        method = api.load_run(args.target).method
    else:  # a preset or YAML file: the untrained networks for the data's shape
        from ganforge.config import load_config

        method = api.build(load_config(args.target, args.set or []), log=_err)
    table = model_summary(method)
    models = method.models
    if args.json:
        print(json.dumps(table))
        return 0
    for name, rows in table.items():
        field = getattr(models[name], "receptive_field", None)  # a PatchGAN: what one logit sees
        print(f"{name}: {sum(p.numel() for p in models[name].parameters()):,} parameters"
              + (f"; each output logit sees a {field}x{field} patch of the input" if field else ""))
        for r in rows:
            shape_text = "x".join(map(str, r["output"]))
            print(f"  {r['layer']:<28}{r['type']:<18}{shape_text:>14}{r['params']:>12,}")
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


def cmd_data(args) -> int:
    from ganforge.data import fetch, source_info
    from ganforge.data.cache import cache_dir

    if args.data_command == "export":
        from ganforge.data import export_pngs

        written = export_pngs(args.name, Path(args.folder), args.split, args.background, log=_err)
        print(json.dumps(written) if args.json else f"wrote {written['images']} PNGs in {written['classes']} "
              f"sub-folders of {args.folder}")
        return 0
    if args.data_command == "info":
        info = source_info(args.name)
        if args.json:
            print(json.dumps(info))
            return 0
        print(f"{info['dataset']}: {'cached in ' + info['cache'] if info['cached'] else 'not cached yet'}"
              + (f" (fetched via {info['route']})" if info["route"] else ""))
        print(f"licence: {info['licence']}")
        if info["licence_file"]:
            print(f"licence text: {info['licence_file']}")
        if info["split"]:
            print(f"split: {info['split']}")
        if info["classes"]:
            print(f"classes: {', '.join(info['classes'])}")
        return 0

    fetch(args.name, force=args.force, log=_err)
    info = {"dataset": args.name, "cache": str(cache_dir())}
    print(json.dumps(info) if args.json else f"{args.name} is cached in {cache_dir()}")
    return 0
