"""A real webhook on loopback that records the JSON alerts it receives (no mock of the HTTP layer)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The token-bearing path of a Slack webhook is the secret; it must never reach a log or a result.
SECRET_PATH = "/services/T0CLAIMS/B0ALERTS/s3cr3tT0kenXYZ"
SECRET_TOKEN = "s3cr3tT0kenXYZ"


@dataclass
class Webhook:
    """A loopback webhook: ``url``, the JSON bodies received, and the statuses still to answer."""

    url: str
    received: list[dict] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def titles(self) -> list[str]:
        """The title of every alert received, in order."""
        return [body["title"] for body in self.received]


@contextmanager
def serve_webhook() -> Iterator[Webhook]:
    """A real HTTP server on 127.0.0.1 (port 0) answering 200, or ``statuses`` in turn when set."""
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.headers["Content-Type"] == "application/json"
            hook.received.append(json.loads(body))
            status = hook.statuses.pop(0) if hook.statuses else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"error")

        def log_message(self, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
