"""One call to the Hub: transient failures retried with backoff, every failure turned into a one-line HubError."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import HubError
from ..redact import redact
from .client import DEFAULT_TIMEOUT_S, TIMEOUT_ENV

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Statuses worth asking again: the Hub or a proxy was briefly unavailable or busy.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Upper bound for one wait between attempts, so a push never stalls for minutes.
MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class _ErrorContext:
    repo_id: str
    endpoint: str
    token: str
    timeout: float = DEFAULT_TIMEOUT_S
    timeout_hint: str = f"--timeout or {TIMEOUT_ENV}"

    def __repr__(self) -> str:  # never show the token, even in a traceback's locals
        return f"_ErrorContext(repo_id={self.repo_id!r}, endpoint={self.endpoint!r})"


def _call_hub(call: Callable[[], T], context: _ErrorContext, retries: int, backoff: float) -> T:
    """Run one Hub call, retrying transient failures, and turn known failures into a HubError."""
    attempts = max(retries, 0) + 1
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as err:  # each path retries, re-raises, or raises a HubError
            if _is_transient(err) and attempt < attempts:
                wait = min(backoff * 2 ** (attempt - 1), MAX_BACKOFF_S)
                logger.warning(
                    "Hub call failed (%s); retrying in %.1f s (attempt %d of %d)",
                    _short_reason(err),
                    wait,
                    attempt + 1,
                    attempts,
                )
                time.sleep(wait)
                continue
            message = _message_for(err, context, attempt)
            if message is None:
                raise  # not a failure we can explain: a bug to see in full, not a user mistake
            # One line, and the token masked even if a server echoed it back.
            raise HubError(redact(" ".join(message.split()), context.token)) from err
    raise AssertionError("unreachable: the loop returns or raises")


def _status(err: BaseException) -> int | None:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(err, HfHubHTTPError) and err.response is not None:
        return err.response.status_code
    return None


def _transport_errors() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(timeouts, refused connections, any transport failure) of whichever HTTP
    client this huggingface_hub uses: httpx2 (2.x), httpx (1.x) or requests (0.x)."""
    timeouts: list[type] = []
    connects: list[type] = []
    transports: list[type] = []
    for name in ("httpx2", "httpx"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        timeouts.append(mod.TimeoutException)
        connects.append(mod.ConnectError)
        transports.append(mod.TransportError)
    try:
        import requests

        timeouts.append(requests.Timeout)
        connects.append(requests.ConnectionError)
        transports.append(requests.ConnectionError)
    except ImportError:
        pass
    return tuple(timeouts), tuple(connects), tuple(transports) + tuple(timeouts)


def _is_transient(err: BaseException) -> bool:
    status = _status(err)
    if status is not None:
        return status in TRANSIENT_STATUSES
    # Refused connections, DNS failures, timeouts and dropped connections.
    return isinstance(err, _transport_errors()[2])


def _short_reason(err: BaseException) -> str:
    status = _status(err)
    return f"HTTP {status}" if status is not None else type(err).__name__


def _message_for(err: BaseException, ctx: _ErrorContext, attempts: int) -> str | None:
    """The user-facing sentence for `err`, or None when it is not a Hub failure we know."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    timeouts, connects, transports = _transport_errors()
    where, tries = ctx.endpoint, f"after {attempts} attempt{'s' if attempts > 1 else ''}"
    namespace = ctx.repo_id.split("/")[0]
    status = _status(err)
    if status == 401:
        return "the Hub rejected the token (401 Unauthorized): check HF_TOKEN or run `hf auth login` again"
    if status == 403:
        return (
            f"your token cannot write to the namespace {namespace!r} (403 Forbidden): "
            "use a token with write access to it, or push under your own username"
        )
    if status == 404:
        return f"{ctx.repo_id} was not found on {where} (404): check the repo id and that your token can see it"
    if status == 409:
        return f"{ctx.repo_id} is busy or in conflict (409): another push may be in progress; wait and try again"
    if status == 429:
        return f"{where} is rate-limiting requests (429) {tries}: wait a few minutes and push again"
    if status is not None and status >= 500:
        return f"{where} failed with HTTP {status} {tries}: the Hub may be down, try again later"
    if status is not None:
        return (
            f"the Hub refused the push (HTTP {status}): {_first_line(getattr(err, 'server_message', None) or str(err))}"
        )
    if isinstance(err, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set, so the Hub cannot be reached: unset it to push"
    if isinstance(err, timeouts):
        return (
            f"timed out talking to {where} {tries} (no progress for {ctx.timeout:g} s): check your network "
            f"and push again, or allow longer with {ctx.timeout_hint}"
        )
    if isinstance(err, connects):
        return f"cannot reach {where} ({tries}): check your network connection and HF_ENDPOINT"
    if isinstance(err, transports):
        return f"the connection to {where} failed ({type(err).__name__}) {tries}: push again"
    if isinstance(err, json.JSONDecodeError):
        # A 200 whose body is not JSON: a proxy's or captive portal's page, or a wrong HF_ENDPOINT.
        what = "an HTML page" if err.doc.lstrip().startswith("<") else "something that is not JSON"
        return (
            f"{where} answered with {what}, not the Hub API: check HF_ENDPOINT (or unset it for "
            "huggingface.co) and any proxy or network login page in the way, then push again"
        )
    # A TypeError about arguments is a call ragtune got wrong, raised by huggingface_hub's argument checks: a bug.
    wrong_call = isinstance(err, TypeError) and "argument" in str(err)
    if (
        isinstance(err, (KeyError, TypeError, AttributeError, IndexError))
        and not wrong_call
        and _raised_in_hub_client(err)
    ):
        # A 200 with JSON that is not the reply the client expects (a field missing, a list for an object):
        # another service answering at HF_ENDPOINT, or a proxy rewriting replies.
        return (
            f"{where} answered with JSON that is not a Hub API reply ({type(err).__name__}: "
            f"{_first_line(str(err))}): check HF_ENDPOINT (or unset it for huggingface.co) and any proxy in "
            "the way, then push again"
        )
    if isinstance(err, ValueError) and "improperly formatted" in str(err) and _raised_in_hub_client(err):
        # huggingface_hub checks the preupload reply's shape itself and raises a ValueError.
        return (
            f"{where} answered with JSON that is not a Hub API reply (ValueError: {_first_line(str(err))}): "
            "check HF_ENDPOINT (or unset it for huggingface.co) and any proxy in the way, then push again"
        )
    if isinstance(err, ValueError) and str(err).startswith("Invalid metadata in README.md"):
        # huggingface_hub lists the problems one per line after this heading.
        return f"the Hub rejected the metadata in README.md: {str(err).partition(chr(10))[2] or 'no details'}"
    return None


def _raised_in_hub_client(err: BaseException) -> bool:
    """Whether `err` was raised by huggingface_hub's own code (reading a reply), not by ragtune's."""
    tb = err.__traceback__
    module = ""
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        tb = tb.tb_next
    return module.startswith("huggingface_hub")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no details"
