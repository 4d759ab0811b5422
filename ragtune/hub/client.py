"""The Hub client, the token it pushes with and how long one request may wait: the one seam to the network."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import HubError

if TYPE_CHECKING:
    from huggingface_hub import HfApi


logger = logging.getLogger(__name__)
# Seconds one request may wait to connect, or between bytes sent or received, before it
# times out (and is retried); RAGTUNE_HUB_TIMEOUT overrides it, --timeout overrides both.
DEFAULT_TIMEOUT_S = 60.0
TIMEOUT_ENV = "RAGTUNE_HUB_TIMEOUT"


def get_api(endpoint: str | None = None) -> HfApi:
    """Build the Hub client: the one seam between ragtune and the network.

    huggingface_hub reads HF_ENDPOINT once at import, so the environment is read
    again here; an explicit `endpoint` wins over both.
    """
    from huggingface_hub import HfApi, constants

    chosen = endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    return HfApi(endpoint=chosen.rstrip("/"), library_name="ragtune")


def resolve_token(token: str | None = None) -> str:
    """The token to push with: the argument, else HF_TOKEN, else the `hf auth login` cache.

    A token with a line break or of blanks only is refused in one line that never shows it
    (a line break would otherwise fail as "connection failed"). Set but blank, HF_TOKEN is
    an error rather than a reason to fall back on the login cache: it was meant to be used.
    """
    from huggingface_hub import get_token

    source = "the token"
    found = token
    if not found and os.environ.get("HF_TOKEN"):
        found, source = os.environ["HF_TOKEN"], "HF_TOKEN"
    if not found:
        found, source = get_token(), "the token of `hf auth login`"
    if not found:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    if not found.strip():
        raise HubError(
            f"{source} is blank (only spaces or tabs); set it to your access token (hf_...), or unset "
            "it and run `hf auth login`"
        )
    if "\r" in found or "\n" in found:
        raise HubError(
            f"{source} holds a line break (CR or LF), e.g. copied with the end of its line; set it to the "
            "token alone, e.g. export HF_TOKEN=\"$(tr -d '\\r\\n' < token.txt)\""
        )
    if not found.isascii():
        # HTTP headers are ASCII: such a token fails deep in the HTTP client. Its position, never the token.
        where = source
        at = next(i for i, c in enumerate(found) if not c.isascii())
        raise HubError(
            f"{where} holds a character that is not ASCII (at position {at + 1}), so it is not a Hugging "
            "Face token: copy the token again from https://huggingface.co/settings/tokens "
            "(a word processor or chat may have changed a character)"
        )
    return found


def resolve_timeout(timeout: float | None = None) -> float:
    """Seconds one Hub request may wait: `timeout`, else RAGTUNE_HUB_TIMEOUT, else 60.

    >>> resolve_timeout(5)
    5.0
    >>> resolve_timeout(float("inf"))
    Traceback (most recent call last):
    ...
    ragtune.errors.HubError: the Hub timeout must be a number of seconds > 0, not inf
    """
    name = "the Hub timeout"
    if timeout is None:
        raw = os.environ.get(TIMEOUT_ENV, "").strip()
        if not raw:
            return DEFAULT_TIMEOUT_S
        name = TIMEOUT_ENV
        try:
            timeout = float(raw)
        except ValueError:
            raise HubError(f"{TIMEOUT_ENV} must be a number of seconds > 0, not {raw!r}") from None
    if not (math.isfinite(timeout) and timeout > 0):
        raise HubError(f"{name} must be a number of seconds > 0, not {timeout:g}")
    return float(timeout)


@contextmanager
def _request_timeouts(seconds: float) -> Iterator[None]:
    """Give every request huggingface_hub sends meanwhile a timeout of `seconds`.

    Its shared client is built with timeout=None and HfApi's upload methods take no
    timeout, so the client factory is wrapped (keeping whatever proxy or certificate
    settings it makes) and put back afterwards.
    """
    import huggingface_hub
    from huggingface_hub.utils import _http

    set_factory = getattr(huggingface_hub, "set_client_factory", None)
    if set_factory is None:
        # huggingface_hub < 1.0 talks through requests, which has no client-wide timeout.
        logger.warning(
            "huggingface_hub %s cannot give Hub requests a timeout; upgrade it "
            "(pip install -U huggingface_hub) so that a silent server cannot stall the push",
            huggingface_hub.__version__,
        )
        yield
        return
    previous = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None) or _http.default_client_factory

    def bounded() -> Any:
        client = previous()
        client.timeout = seconds  # httpx: connect, read, write and pool each
        return client

    set_factory(bounded)
    try:
        yield
    finally:
        set_factory(previous)
