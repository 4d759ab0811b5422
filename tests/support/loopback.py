"""What the loopback test servers share: a quiet JSON handler, one way to start and stop a server on 127.0.0.1,
and a server that never answers."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


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


class HungUpIsQuietServer(ThreadingHTTPServer):
    """A server that says nothing when a client hangs up mid-reply.

    socketserver prints the traceback of any handler error to stderr from the request thread; when that thread
    outlives its test, the lines land in whatever test pytest is capturing next. A client that hung up
    (a broken pipe, a reset, an SSL EOF) is what many tests here want, so it is not an error; anything else is.
    """

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """Serves `handler` on 127.0.0.1 at a free port from a background thread, for the time of a `with` block.

    The port is bound at construction, so `url` can be handed out (or the socket wrapped in TLS) before the
    server starts. Handlers reach per-test state through `self.server`, which is `httpd` here.
    """

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        name: str = "loopback",
        server_class: type[ThreadingHTTPServer] = HungUpIsQuietServer,
    ) -> None:
        self.httpd = server_class(("127.0.0.1", 0), handler)
        # Daemon request threads: a handler still writing to a client that gave up never holds teardown.
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # A short poll interval keeps shutdown (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, name=name, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class SilentServer:
    """Accepts connections on 127.0.0.1 and never sends a byte: a hung Hub or proxy."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        # Closing a socket does not wake a blocked accept(), so poll for the stop flag instead.
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silentserver", daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            self._held.append(conn)  # kept open and unanswered until the test ends

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for conn in self._held:
            conn.close()
