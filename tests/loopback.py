"""What the loopback test servers (tests/hubserver.py, tests/llmserver.py) share."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any


class QuietJSONHandler(BaseHTTPRequestHandler):
    """A keep-alive request handler that logs nothing and answers in JSON."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def send_json(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        """Send a JSON body with its status and headers; a client that already hung up is not an error."""
        try:
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing left to tell it
