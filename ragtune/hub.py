"""Publish a run's model folder to the Hugging Face Hub.

This is the only module that talks to the Hub, and `get_api()` is the only place
that builds a client, so tests can point it at a local server. Nothing is pushed
unless `push()` is called explicitly; `plan_push()` shows what would go up
without touching the network.

Every failure surfaces as a one-line `HubError` that says what to do next. The
token is never part of a message or a log line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, HfApi, RepoUrl

logger = logging.getLogger(__name__)

T = TypeVar("T")

COMMIT_MESSAGE = "Upload fine-tuned embedding model (ragtune)"
# Statuses worth asking again: the Hub or a proxy was briefly unavailable or busy.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Upper bound for one wait between attempts, so a push never stalls for minutes.
MAX_BACKOFF_S = 30.0
# Hub rules: letters, digits, '-', '_', '.'; no '--' or '..'; at most 96 characters.
_REPO_PART = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")


class HubError(Exception):
    """A push failed or was refused; the message is one line meant for the user."""


@dataclass
class PushPlan:
    """What `push()` would upload: paths relative to the model folder, with sizes."""

    repo_id: str
    private: bool
    files: list[tuple[str, int]]
    total_bytes: int


def get_api(endpoint: str | None = None) -> HfApi:
    """Build the Hub client: the one seam between ragtune and the network.

    huggingface_hub reads HF_ENDPOINT once at import, so the environment is read
    again here; an explicit `endpoint` wins over both.
    """
    from huggingface_hub import HfApi, constants

    chosen = endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    return HfApi(endpoint=chosen.rstrip("/"), library_name="ragtune")


def validate_repo_id(repo_id: str) -> None:
    """Raise HubError unless `repo_id` looks like 'namespace/name'.

    >>> validate_repo_id("alice/ragtune-minilm")
    >>> validate_repo_id("ragtune-minilm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ragtune.hub.HubError: repo id 'ragtune-minilm' must look like 'namespace/name' (...), e.g. 'alice/ragtune-minilm'
    """
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_REPO_PART.match(p) and "--" not in p and ".." not in p for p in parts):
        raise HubError(
            f"repo id {repo_id!r} must look like 'namespace/name' (letters, digits, '-', '_', '.'; "
            "at most 96 characters each), e.g. 'alice/ragtune-minilm'"
        )


def plan_push(run_dir: Path, repo_id: str, private: bool = False) -> PushPlan:
    """List the files `push()` would upload from `run_dir/model`; no network.

    >>> plan = plan_push(Path("runs/latest"), "alice/minilm")  # doctest: +SKIP
    >>> plan.files[:2]  # doctest: +SKIP
    [('README.md', 2048), ('config.json', 612)]
    """
    from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

    validate_repo_id(repo_id)
    model_dir = Path(run_dir) / "model"
    if not model_dir.is_dir():
        raise HubError(f"no model to push: {model_dir} does not exist (train one with `ragtune run` first)")
    on_disk = {p.relative_to(model_dir).as_posix(): p for p in sorted(model_dir.glob("**/*")) if p.is_file()}
    # Same filter upload_folder applies (.git, .cache/huggingface), so the plan matches the upload.
    kept = filter_repo_objects(on_disk, ignore_patterns=list(DEFAULT_IGNORE_PATTERNS))
    files = [(rel, on_disk[rel].stat().st_size) for rel in kept]
    if not files:
        raise HubError(f"nothing to push: {model_dir} is empty")
    return PushPlan(repo_id=repo_id, private=private, files=files, total_bytes=sum(size for _, size in files))


def check_metrics(run_dir: Path, force: bool = False) -> None:
    """Refuse to publish a model that did not beat its base model, unless forced.

    A run without metrics.json is refused too: nobody has checked that it helps.
    """
    if force:
        return
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise HubError(f"not pushing: {path} is missing, so the model was never evaluated; pass --force to push anyway")
    try:
        improved = json.loads(path.read_text(encoding="utf-8")).get("improved")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        raise HubError(f"not pushing: {path} is not a JSON object; rerun the evaluation or pass --force") from None
    if improved is not True:
        # json.dumps so the message shows the file's spelling: false, null.
        raise HubError(
            f"not pushing: {path.name} does not show the fine-tuned model beating the base model "
            f"(improved={json.dumps(improved)}); pass --force to push anyway"
        )


def resolve_token(token: str | None = None) -> str:
    """The token to push with: the argument, else HF_TOKEN, else the `hf auth login` cache."""
    from huggingface_hub import get_token

    found = token or os.environ.get("HF_TOKEN") or get_token()
    if not found:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return found


def push(
    run_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    force: bool = False,
    retries: int = 3,
    backoff: float = 1.0,
    api: HfApi | None = None,
) -> str:
    """Create `repo_id` if needed and upload `run_dir/model` in one commit; return the commit URL.

    Transient failures (5xx, 429, connection errors, timeouts) are retried up to
    `retries` times, waiting `backoff`, 2*`backoff`, ... seconds in between.

    >>> push(Path("runs/latest"), "alice/minilm", private=True)  # doctest: +SKIP
    'https://huggingface.co/alice/minilm/commit/3f2a…'
    """
    plan = plan_push(run_dir, repo_id, private)
    check_metrics(run_dir, force)
    secret = resolve_token(token)
    api = api if api is not None else get_api()
    model_dir = Path(run_dir) / "model"

    def create() -> RepoUrl:
        return api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True, token=secret)

    def upload() -> CommitInfo:
        # With hf_xet installed, upload_folder batches commits of ~250 files or
        # 100 MB of inline content; a model folder is far below both, so it lands
        # as a single commit and a half-pushed model is never visible.
        return api.upload_folder(
            folder_path=model_dir, repo_id=repo_id, repo_type="model", commit_message=COMMIT_MESSAGE, token=secret
        )

    context = _ErrorContext(repo_id=repo_id, endpoint=api.endpoint, token=secret)
    _call_hub(create, context, retries, backoff)
    info = _call_hub(upload, context, retries, backoff)
    logger.info("pushed %d files (%d bytes) to %s", len(plan.files), plan.total_bytes, repo_id)
    return info.commit_url


@dataclass(frozen=True)
class _ErrorContext:
    repo_id: str
    endpoint: str
    token: str

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
            raise HubError(" ".join(message.split()).replace(context.token, "***")) from err
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
        return f"timed out talking to {where} {tries}: check your network and push again"
    if isinstance(err, connects):
        return f"cannot reach {where} ({tries}): check your network connection and HF_ENDPOINT"
    if isinstance(err, transports):
        return f"the connection to {where} failed ({type(err).__name__}) {tries}: push again"
    if isinstance(err, ValueError) and str(err).startswith("Invalid metadata in README.md"):
        # huggingface_hub lists the problems one per line after this heading.
        return f"the Hub rejected the metadata in README.md: {str(err).partition(chr(10))[2] or 'no details'}"
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no details"
