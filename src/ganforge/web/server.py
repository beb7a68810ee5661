"""What the local pages' servers share (`ganforge watch`, `ganforge lab`): a quiet request
handler with small reply helpers, and a server that binds to 127.0.0.1 unless told otherwise
and says in one line when it cannot listen."""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from ganforge.errors import GanforgeError


def page(name: str) -> bytes:
    """A page shipped in the package (ganforge/web/<name>)."""
    return resources.files("ganforge.web").joinpath(name).read_bytes()


class PageHandler(BaseHTTPRequestHandler):
    """Replies that are never cached and never sniffed; no request log (the terminal shows
    training, not requests)."""

    server_version = "ganforge"

    def log_message(self, *args) -> None:
        pass

    def send(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the tab was closed while it waited for an answer

    def send_json(self, value, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send(json.dumps(value).encode(), "application/json", status)

    def not_found(self) -> None:
        self.send(b"not found", "text/plain", HTTPStatus.NOT_FOUND)


def listen(host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A threading server on host:port (port 0: any free one), not yet serving."""
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise GanforgeError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port") from None
    server.daemon_threads = True
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
