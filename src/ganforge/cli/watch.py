"""`ganforge watch`: follow runs in the browser while they train."""

from __future__ import annotations

from ganforge.cli.common import _err


def add_parsers(sub) -> None:
    w = sub.add_parser("watch", help="a local web page that follows runs while they train: curves, alerts, "
                       "sample grids, progress (several runs on the same axes)")
    w.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    w.add_argument("--port", type=int, default=8765, help="default 8765 (0: any free port)")
    w.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    w.set_defaults(func=cmd_watch)


def cmd_watch(args) -> int:
    from ganforge.watch import make_server, url_of

    server = make_server(args.run_dirs, args.host, args.port)
    _err(f"watching {len(args.run_dirs)} run(s) at {url_of(server)} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        _err("ganforge: watch stopped")
    finally:
        server.server_close()
    return 0
