"""The `openai` question generator: any OpenAI-compatible /chat/completions server (OpenAI, vLLM, Ollama,
llama.cpp's server), over HTTP with the standard library only.

The prompt, the response cache, the parsing of questions and the concurrency are LLMGenerator's
(generators/llm.py); this module is the HTTP client: retries and their backoff, Retry-After, the
whole-request deadline, and reading a chat-completions reply.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from ..records import Chunk
from ..redact import redact, redact_url, url_secrets
from .llm import PROMPT_VERSION, SYSTEM_PROMPT, TEMPERATURE, Completion, LLMGenerator, RequestFailed, _token_count


class _Transient(Exception):
    """A failure worth retrying: a timeout, a dropped connection, 429, 5xx or a garbled reply."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date) or retry-after-ms, if given.

    >>> _retry_after({"Retry-After": "2"}), _retry_after({"retry-after-ms": "150"}), _retry_after({})
    (2.0, 0.15, None)
    """
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        if ms:
            return max(0.0, float(ms) / 1000)
        if value:
            return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    return None


def _error_message(body: bytes) -> str:
    """The server's own error message, from {"error": {"message": ...}} or the start of the body."""
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        message = err.get("message", err) if isinstance(err, dict) else err
    except (json.JSONDecodeError, UnicodeDecodeError):
        message = body.decode("utf-8", "replace")
    return " ".join(str(message).split())[:200]


class OpenAIGenerator(LLMGenerator):
    """Questions from an OpenAI-compatible /chat/completions endpoint, `concurrency` requests at a time.

    Timeouts, dropped connections, 429 (waiting as long as Retry-After says),
    5xx and unreadable replies are retried with exponential backoff; other 4xx
    fail at once. The API key comes from `api_key` (the CLI passes OPENAI_API_KEY)
    and is sent only in the Authorization header.
    """

    name = "openai"
    fix_hint = "check --llm-base-url, --llm-model and OPENAI_API_KEY"

    def __init__(
        self,
        base_url: str,
        model: str,
        questions_per_chunk: int,
        *,
        api_key: str = "",
        concurrency: int,
        timeout: float,
        retries: int,
        seed: int,
        cache_dir: Path | None,
        backoff: float = 0.5,
        max_wait: float = 60.0,
    ) -> None:
        super().__init__(questions_per_chunk, cache_dir, concurrency)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.base_url, self.model, self.api_key = base_url, model, api_key
        self.timeout, self.retries, self.seed = timeout, retries, seed
        self.backoff, self.max_wait = backoff, max_wait

    def _where(self) -> str:
        return redact_url(self.base_url)  # never the credentials a URL may carry (user:PASSWORD@, ?key=)

    def _cache_key(self, prompt: str) -> str:
        return self.cache.key(
            PROMPT_VERSION, self.model, SYSTEM_PROMPT, prompt, self.questions_per_chunk, TEMPERATURE, self.seed
        )

    def _payload(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            "temperature": TEMPERATURE,
            # Room for n questions of up to MAX_QUESTION_WORDS words; a rambling model is cut off.
            "max_tokens": 64 * self.questions_per_chunk + 64,
            "seed": self.seed,
        }

    def _complete(self, prompt: str, chunk: Chunk) -> Completion:
        data = json.dumps(self._payload(prompt)).encode()
        reason = "stopped"
        for attempt in range(self.retries + 1):
            if self._stop.is_set():
                break
            with self._lock:
                self.stats.requests += 1
            try:
                return self._post(data)
            except _Transient as e:
                reason = str(e)
                # Jitter keeps concurrent workers from retrying in lockstep.
                backoff = self.backoff * 2**attempt * random.uniform(1, 1.25)
                wait_s = e.retry_after if e.retry_after is not None else backoff
                if attempt < self.retries:
                    # An interruptible sleep: Ctrl-C elsewhere sets _stop.
                    self._stop.wait(min(wait_s, self.max_wait))
        raise RequestFailed(self._redact(f"{reason} ({self.retries + 1} tries)" if self.retries else reason))

    def _redact(self, message: str) -> str:
        """Servers echo (part of) a bad key in their 401 message; it must not reach a terminal or a log,
        and neither may the credentials in the URL."""
        return redact(message, self.api_key, *url_secrets(self.base_url))

    def _post(self, data: bytes) -> Completion:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        # urlopen's timeout bounds each read, not the reply: a server that sends a byte
        # now and then would hold a request for ever. The deadline bounds the whole of it.
        deadline = _Deadline(self.timeout)
        with deadline:
            try:
                body = self._send(request, deadline)
            except (_Transient, RequestFailed, http.client.HTTPException, OSError, ValueError):
                # Cut off at the deadline, the reply breaks off in whatever way it happens to.
                if deadline.expired:
                    raise _Transient(self._too_slow()) from None
                raise
        if deadline.expired:  # a reply without Content-Length just ends at the cut: it is not whole
            raise _Transient(self._too_slow())
        return _read_completion(body)

    def _too_slow(self) -> str:
        return f"no complete reply within {self.timeout:g}s (--llm-timeout)"

    def _send(self, request: urllib.request.Request, deadline: "_Deadline") -> bytes:
        try:
            with deadline.opener().open(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            reason = f"HTTP {e.code} ({self._redact(_error_message(e.read()))})"
            if e.code in (408, 409, 429) or e.code >= 500:
                raise _Transient(reason, _retry_after(e.headers)) from None
            if e.code in (401, 403) and not self.api_key:
                reason += " (OPENAI_API_KEY is not set)"
            raise RequestFailed(reason) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise _Transient(f"no reply within {self.timeout:g}s (--llm-timeout)") from None
            raise _Transient(f"cannot connect ({e.reason})") from None
        except (TimeoutError, socket.timeout):
            raise _Transient(f"no reply within {self.timeout:g}s (--llm-timeout)") from None
        except (http.client.HTTPException, OSError) as e:
            raise _Transient(f"the connection broke ({e.__class__.__name__}: {e})") from None


class _Deadline:
    """Shuts a request's connection down once `seconds` have passed since it started.

    Used as a context manager around one request; `opener()` gives a urllib opener
    (proxies and HTTPS as urlopen's) whose connections register their socket here.
    A blocked read then ends at once, and `expired` tells why it ended.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def opener(self) -> urllib.request.OpenerDirector:
        deadline = self

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                super().connect()
                deadline.watch(self.sock)

        class SecureConnection(http.client.HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                deadline.watch(self.sock)

        class Handler(urllib.request.HTTPHandler):
            def http_open(self, req: urllib.request.Request) -> Any:
                return self.do_open(Connection, req)

        class SecureHandler(urllib.request.HTTPSHandler):
            def https_open(self, req: urllib.request.Request) -> Any:
                return self.do_open(SecureConnection, req, context=self._context)

        return urllib.request.build_opener(Handler, SecureHandler)


def _shut(sock: socket.socket) -> None:
    """End the socket's reads and writes, so that a thread blocked on it returns at once.

    socket.socket's own shutdown, also for a TLS socket: SSLSocket.shutdown would unwrap
    the TLS state under the reading thread's feet; this way that thread just reads an EOF.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by its own thread: nothing left to cut


def _read_completion(body: bytes) -> Completion:
    """The message text and token usage of a chat-completions reply.

    >>> _read_completion(b'{"choices": [{"message": {"content": "Why?"}}], "usage": {"prompt_tokens": 9}}')
    Completion(text='Why?', prompt_tokens=9, completion_tokens=0, cut_off=False, bad_usage=False)
    """
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Transient(f"the reply is not JSON: {body[:80]!r}") from None
    except (KeyError, IndexError, TypeError, AttributeError):
        raise _Transient(f"the reply has no choices[0].message: {body[:80]!r}") from None
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    prompt_tokens, completion_tokens = (_token_count(usage.get(k)) for k in ("prompt_tokens", "completion_tokens"))
    return Completion(
        str(content),
        max(prompt_tokens, 0),
        max(completion_tokens, 0),
        choice.get("finish_reason") == "length",
        bad_usage=min(prompt_tokens, completion_tokens) < 0,
    )
