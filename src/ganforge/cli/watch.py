"""`ganforge watch`: follow runs in the browser while they train; `ganforge lab`: the 2-D playground."""

from __future__ import annotations

import signal

from ganforge.cli.common import _err
from ganforge.errors import GanforgeError


def add_server_arguments(parser, port: int) -> None:
    parser.add_argument("--port", type=int, default=port, help=f"default {port} (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                        "only; 0.0.0.0 opens it to the network)")


def serve_until_stopped(server, name: str, on_stop=None) -> None:
    """Serve until Ctrl-C (SIGINT) or SIGTERM, then say so and close. The handlers are installed
    here rather than left to Python's default: a process started in the background by a
    non-interactive shell inherits SIGINT ignored, and would otherwise never stop on it."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        _err(f"ganforge: {name} stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if on_stop is not None:
            on_stop()
        server.server_close()


def add_parsers(sub) -> None:
    w = sub.add_parser("watch", help="a local web page that follows runs while they train: curves, alerts, "
                       "sample grids, progress (several runs on the same axes)")
    w.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    add_server_arguments(w, 8765)
    w.set_defaults(func=cmd_watch)
    add_lab_parser(sub)


def cmd_watch(args) -> int:
    from ganforge.watch import make_server, url_of

    server = make_server(args.run_dirs, args.host, args.port)
    _err(f"watching {len(args.run_dirs)} run(s) at {url_of(server)} (Ctrl-C stops)")
    serve_until_stopped(server, "watch")
    return 0


def add_lab_parser(sub) -> None:
    lab = sub.add_parser("lab", help="an interactive 2-D GAN playground in the browser, trained by ganforge's own "
                         "losses, loop and health monitor")
    add_server_arguments(lab, 8766)
    lab.add_argument("--runs", default="runs", metavar="DIR",
                     help="where 'save run' writes the session as a numbered run directory (default runs/)")
    lab.add_argument("--threads", type=int, default=1,
                     help="PyTorch threads (default 1: the lab's small networks train about 3x faster on one thread "
                     "than on two that share the CPU with the browser)")
    lab.set_defaults(func=cmd_lab)


def cmd_lab(args) -> int:
    import torch

    from ganforge.lab.server import make_lab, url_of

    if args.threads < 1:
        raise GanforgeError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    server, worker = make_lab(args.host, args.port, args.runs, log=_err)
    _err(f"ganforge lab at {url_of(server)} (Ctrl-C stops; 'save run' writes under {args.runs}/)")
    serve_until_stopped(server, "lab", on_stop=worker.close)
    return 0
