"""Autoencoder and VAE runs: `reconstruct`, `arithmetic`, `likelihood` and `anomaly`."""

from __future__ import annotations

import json
from pathlib import Path

from ganforge.cli.common import _err, run_command
from ganforge.errors import GanforgeError


def add_parsers(sub) -> None:
    rc = run_command(sub, "reconstruct", "autoencoders: images beside their reconstructions",
                     cmd_reconstruct, output="reconstructions.png")
    rc.add_argument("--split", default="test", choices=["train", "test"])
    rc.add_argument("-n", type=int, default=None, help="pictures (default 32; with --measure the whole split)")
    rc.add_argument("--seed", type=int, default=0)
    rc.add_argument("--measure", action="store_true",
                    help="score the whole split instead (MSE, PSNR, FID of reconstructions, bits per image) and "
                    "write a card to RUN/eval/")
    rc.add_argument("--latent-bits", type=int, default=8,
                    help="with --measure, ae and vae: quantise each latent to this many bits, so the code holds "
                    "z_dim x bits bits (default 8; 0 keeps float32); a vqvae code is always its grid of codes")

    ar = sub.add_parser("arithmetic", help="autoencoders: decode mean(a) - mean(b) + mean(c) of image groups")
    ar.add_argument("run_dir")
    for g in ("a", "b", "c"):
        ar.add_argument(f"--{g}", required=True, help="a class of the test split ('7' or 'class:7'), or image "
                        "files / a folder, comma-separated")
    ar.add_argument("--step", type=int, default=None)
    ar.add_argument("-o", "--output", default="arithmetic.png")
    ar.add_argument("--json", action="store_true")
    ar.set_defaults(func=cmd_arithmetic)

    lk = run_command(sub, "likelihood", "VAEs: test ELBO and importance-sampled NLL on binarised test images",
                     cmd_likelihood)
    lk.add_argument("-k", type=int, default=5000, help="importance samples per image (5,000 for reported numbers)")
    lk.add_argument("-n", type=int, default=None, help="only the first n test images (default: all)")
    lk.add_argument("--seed", type=int, default=0)

    an = sub.add_parser("anomaly", help="anomaly detection with autoencoders")
    ansub = an.add_subparsers(dest="action", required=True)
    af = ansub.add_parser("fit", help="train on normal images and calibrate a threshold")
    af.add_argument("--preset", default="ae-mnist-anomaly",
                    help="an ae or vae preset or YAML file (default ae-mnist-anomaly)")
    af.add_argument("--normal-class", type=int, default=None, help="the normal class of the preset's dataset")
    af.add_argument("--normal-folder", default=None, help="or: a folder of normal images")
    af.add_argument("--fpr", type=float, default=0.05, help="false-positive rate the threshold allows (0..1)")
    af.add_argument("--score", default="combined", help="combined (default), relative or error: see README")
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
    oc.add_argument("--score", default="combined", help="the score thresholded and plotted (all are reported)")
    oc.add_argument("--set", action="append", metavar="KEY=VALUE")
    oc.add_argument("--out", default="runs/one-class")
    oc.add_argument("--json", action="store_true")
    oc.set_defaults(func=cmd_anomaly)


def cmd_reconstruct(args) -> int:
    from ganforge import api
    from ganforge.reconstruction import reconstruct
    from ganforge.report.images import save_grid

    run = api.load_run(args.run_dir, step=args.step)
    if args.measure:
        from ganforge.reconstruction import reconstruction_card

        log = _err if not args.json else (lambda *_: None)
        card = reconstruction_card(run, args.split, args.latent_bits or None, args.n, log=log)
        api.refresh_report(run.run_dir, log)
        print(json.dumps(card) if args.json else format_reconstruction_card(card))
        return 0
    n = 32 if args.n is None else args.n
    if n < 1:
        raise GanforgeError(f"-n must be at least 1, got {n}")
    out = reconstruct(run, args.split, n, args.seed)
    save_grid(out["grid"], args.output, nrow=8)
    result = {"path": args.output, "split": args.split, "n": out["n"], "seed": args.seed, "mse": out["mse"],
              "step": run.step}
    print(json.dumps(result) if args.json else
          f"wrote {out['n']} {args.split} images (odd rows) and their reconstructions (even rows) to {args.output}; "
          f"mean squared error per pixel {out['mse']:.4f} (grey levels in [0, 1])")
    return 0


def format_reconstruction_card(card: dict) -> str:
    """A reconstruction card in lines: the code and its bits, pixel scores, FID, codebook use."""
    m = card["metrics"]
    lines = [f"run {card['run']} at step {card['step']}: {card['n']} {card['split']} pictures through "
             f"{card['code']} = {card['bits_per_image']:g} bits per image",
             f"  MSE {m['mse']:.5f} ([0, 1] scale), MSE / variance {m['mse_over_var']:.4f}, PSNR "
             f"{m['psnr']['mean']:.2f} +- {m['psnr']['se']:.2f} dB"]
    if "fid" in m:
        f = m["fid"]
        lines.append(f"  FID of reconstructions vs originals {f['value']:.2f} (95% CI {f['ci_low']:.2f} - "
                     f"{f['ci_high']:.2f}; 0 is perfect)")
    if "float_codes" in card:
        fc = card["float_codes"]
        lines.append(f"  unquantised float32 code: MSE {fc['mse']:.5f}, PSNR {fc['psnr']['mean']:.2f} dB")
    if "codebook" in card:
        c = card["codebook"]
        lines.append(f"  codebook on this split: perplexity {c['perplexity']:.1f} of {c['codes']}, "
                     f"{100 * c['used']:.0f}% of codes used; what codes stand for: eval/{c['picture']}")
    lines.append(f"examples: eval/{card['examples']['path']}; card: {card['card_path']}")
    return "\n".join(lines)


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
    from ganforge.autoencoding import likelihood_card

    run = api.load_run(args.run_dir, step=args.step)
    card = likelihood_card(run, args.k, args.n, args.seed, log=_err if not args.json else (lambda *_: None))
    path = card["card_path"]
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
        record = anomaly.fit(cfg, out, args.fpr, kind=args.score, overwrite=args.overwrite, progress=not args.quiet,
                             log=_err)
        print(json.dumps(record) if args.json else
              f"trained {out} on {record['n_train']} normal images; threshold {record['threshold']:.4g} "
              f"({record['score']}) flags {100 * record['measured_fpr']:.1f}% of the {record['n_calibration']} "
              f"held-out normal images (asked: {100 * args.fpr:.1f}%)")
        return 0
    if args.action == "score":
        from ganforge import api

        run = api.load_run(args.run_dir)
        if args.fpr is not None:  # recalibrate on the run's held-out normal images
            anomaly.check_fpr(args.fpr)
            old = anomaly.saved_calibration(run)
            kind = old.get("kind", "error") if old else anomaly.DEFAULT_SCORE
            anomaly.calibrate(run, *anomaly.normal_images(run.config), args.fpr, kind)
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
    summary = anomaly.one_class(args.preset, classes, Path(args.out), list(args.set or []), args.fpr, args.score,
                                log=_err if not args.json else (lambda *_: None))
    if args.json:
        print(json.dumps(summary))
    else:
        names = [summary["kind"], *(n for n in anomaly.SCORES if n != summary["kind"])]
        print("class  " + "  ".join(f"{n + ' %':>9}" for n in names) + "   (AUROC by score)")
        for r in summary["classes"]:
            print(f"{r['class']:>5}  " + "  ".join(f"{100 * r['auroc_by_score'][n]:9.1f}" for n in names))
        print(" mean  " + "  ".join(f"{100 * summary['mean_auroc_by_score'][n]:9.1f}" for n in names)
              + f"   (ROC curves of the {summary['kind']} score: {summary['roc_plot']})")
    return 0
