"""Publish a run's model folder (and, optionally, its question pairs) to the Hugging Face Hub.

This is the only module that talks to the Hub, and `get_api()` is the only place
that builds a client, so tests can point it at a local server. Nothing is pushed
unless `push()` is called explicitly; `plan_push()` shows what would go up
without touching the network.

With `with_data=True` the run's synthetic pairs go up first, as the dataset repo
`REPO_ID-pairs` (train.jsonl, eval.jsonl and a README), and the model card that
goes up names it under `datasets:`. The card on disk is left as it is.

Every request to the Hub gives up after `timeout` seconds without progress (60 by
default, or RAGTUNE_HUB_TIMEOUT), so a server that accepts and never answers ends a
push instead of holding it forever.

Every failure surfaces as a one-line `HubError` that says what to do next. The
token is never part of a message or a log line.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import HubError, PairsError
from .redact import redact

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, HfApi, RepoUrl

logger = logging.getLogger(__name__)

T = TypeVar("T")

COMMIT_MESSAGE = "Upload fine-tuned embedding model (ragtune)"
DATASET_COMMIT_MESSAGE = "Upload synthetic question-chunk pairs (ragtune)"
# The pairs dataset of model repo "alice/minilm" is "alice/minilm-pairs".
DATASET_SUFFIX = "-pairs"
# Statuses worth asking again: the Hub or a proxy was briefly unavailable or busy.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Upper bound for one wait between attempts, so a push never stalls for minutes.
MAX_BACKOFF_S = 30.0
# Seconds one request may wait to connect, or between bytes sent or received, before it
# times out (and is retried); RAGTUNE_HUB_TIMEOUT overrides it, --timeout overrides both.
DEFAULT_TIMEOUT_S = 60.0
TIMEOUT_ENV = "RAGTUNE_HUB_TIMEOUT"
# Hub rules: letters, digits, '-', '_', '.'; no '--' or '..'; at most 96 characters.
_REPO_PART = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
# A Hugging Face access token ("hf_" and 30-odd letters and digits), pasted where the repo id goes.
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{16,}")


@dataclass
class PushPlan:
    """What `push()` would upload: paths relative to the model folder, with sizes.

    With data, `dataset_files` are the dataset repo's files and the README.md size
    in `files` is that of the card as uploaded (with its `datasets:` entry).
    """

    repo_id: str
    private: bool
    files: list[tuple[str, int]]
    total_bytes: int
    dataset_repo_id: str | None = None
    dataset_files: list[tuple[str, int]] = field(default_factory=list)
    # Symbolic links and special files in the model folder that are not uploaded (see `left_out_line`).
    left_out: list[str] = field(default_factory=list)

    @property
    def dataset_bytes(self) -> int:
        return sum(size for _, size in self.dataset_files)


def get_api(endpoint: str | None = None) -> HfApi:
    """Build the Hub client: the one seam between ragtune and the network.

    huggingface_hub reads HF_ENDPOINT once at import, so the environment is read
    again here; an explicit `endpoint` wins over both.
    """
    from huggingface_hub import HfApi, constants

    chosen = endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    return HfApi(endpoint=chosen.rstrip("/"), library_name="ragtune")


def repo_id_problem(repo_id: str) -> str | None:
    """Why `repo_id` cannot be pushed to, in one line that never repeats a secret; None when it can.

    >>> repo_id_problem("alice/hf_AbCdEfGhIjKlMnOpQrStUv")[:64]
    'the repo id looks like a Hugging Face access token (hf_...), so '
    >>> repo_id_problem("alice/minilm") is None
    True
    """
    if _TOKEN_LIKE.search(repo_id):
        return (
            "the repo id looks like a Hugging Face access token (hf_...), so it is not shown; give the repo as "
            "namespace/name, e.g. alice/ragtune-minilm, and revoke that token at huggingface.co/settings/tokens "
            "if it was shared"
        )
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_REPO_PART.match(p) and "--" not in p and ".." not in p for p in parts):
        return (
            f"repo id {repo_id!r} must look like 'namespace/name' (letters, digits, '-', '_', '.'; "
            "at most 96 characters each), e.g. 'alice/ragtune-minilm'"
        )
    return None


def validate_repo_id(repo_id: str) -> None:
    """Raise HubError unless `repo_id` looks like 'namespace/name' (and not like a token pasted in its place).

    >>> validate_repo_id("alice/ragtune-minilm")
    >>> validate_repo_id("ragtune-minilm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ragtune.errors.HubError: repo id 'ragtune-minilm' must look like 'namespace/name' (...), e.g. 'alice/ragtune-minilm'
    """
    problem = repo_id_problem(repo_id)
    if problem is not None:
        raise HubError(problem)


def dataset_repo_id(repo_id: str) -> str:
    """The dataset repo that holds a model repo's pairs.

    >>> dataset_repo_id("alice/minilm")
    'alice/minilm-pairs'
    """
    return repo_id + DATASET_SUFFIX


def plan_push(run_dir: Path, repo_id: str, private: bool = False, with_data: bool = False) -> PushPlan:
    """List the files `push()` would upload from `run_dir/model` (and the pairs dataset); no network.

    >>> plan = plan_push(Path("runs/latest"), "alice/minilm")  # doctest: +SKIP
    >>> plan.files[:2]  # doctest: +SKIP
    [('README.md', 2048), ('config.json', 612)]
    """
    sources, left_out = _model_files(run_dir, repo_id)
    files = [(rel, path.stat().st_size) for rel, path in sources.items()]
    plan = PushPlan(repo_id=repo_id, private=private, files=files, total_bytes=0, left_out=left_out)
    data_id = None
    if with_data:
        data_id = dataset_repo_id(repo_id)
        validate_repo_id(data_id)
    card = _card_for_upload(run_dir, repo_id, data_id)
    if card is not None:
        plan.files = sorted([(r, s) for r, s in files if r != "README.md"] + [("README.md", len(card))])
    if with_data:
        plan.dataset_repo_id = data_id
        plan.dataset_files = [(name, len(data)) for name, data in dataset_files(run_dir, repo_id).items()]
    plan.total_bytes = sum(size for _, size in plan.files)
    return plan


def _model_files(run_dir: Path, repo_id: str) -> tuple[dict[str, Path], list[str]]:
    """Relative path -> file of everything in `run_dir/model` that goes up, sorted; and what was left out.

    Only regular files inside the model folder go up: a symbolic link is never followed
    out of it (a link to ~/.ssh would publish a key), nor into a linked folder; links
    that stay inside go up as the file they name. What is left out is listed, so the
    caller can say so.
    """
    from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

    validate_repo_id(repo_id)
    model_dir = Path(run_dir) / "model"
    if not model_dir.is_dir():
        raise HubError(f"no model to push: {model_dir} does not exist (train one with `ragtune run` first)")
    if model_dir.is_symlink():
        raise HubError(
            f"not pushing: {model_dir} is a symbolic link, and a push uploads only what lies inside the "
            "run; copy the model folder into the run instead"
        )
    on_disk, left_out = _regular_files(model_dir)
    # Same filter upload_folder applies (.git, .cache/huggingface), so the plan matches the upload.
    kept = filter_repo_objects(on_disk, ignore_patterns=list(DEFAULT_IGNORE_PATTERNS))
    files = {rel: on_disk[rel] for rel in kept}
    if not files:
        raise HubError(f"nothing to push: {model_dir} is empty")
    return files, left_out


def _regular_files(model_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """The regular files under `model_dir` (sorted, by relative path) and the symbolic links
    or special files that are not uploaded; linked folders are never entered."""
    files: dict[str, Path] = {}
    left_out: list[str] = []
    for here, dirs, names in os.walk(model_dir):  # os.walk does not follow links to folders
        base = Path(here)
        for name in sorted(dirs):
            if (base / name).is_symlink():
                left_out.append((base / name).relative_to(model_dir).as_posix() + "/")
        for name in sorted(names):
            path = base / name
            rel = path.relative_to(model_dir).as_posix()
            if not _inside(path, model_dir):
                left_out.append(rel)
            elif path.is_file():
                files[rel] = path
            else:  # a pipe, socket or device, or a link to nothing
                left_out.append(rel)
    return dict(sorted(files.items())), sorted(left_out)


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path`, its links followed, stays inside `folder`."""
    return path.resolve().is_relative_to(folder.resolve())


def left_out_line(left_out: list[str]) -> str:
    """One line naming what a push leaves out of the model folder.

    >>> left_out_line(["id_rsa", "ssh/"])
    'not uploading 2 symbolic links or special files in model/ that lead out of it or are no regular file: id_rsa, ssh/'
    """
    n = len(left_out)
    shown = ", ".join(left_out[:5]) + (f" and {n - 5} more" if n > 5 else "")
    return (
        f"not uploading {n} symbolic link{'s' if n != 1 else ''} or special file{'s' if n != 1 else ''} in "
        f"model/ that lead out of it or are no regular file: {shown}"
    )


# --- the pairs dataset ------------------------------------------------------------------


def dataset_files(run_dir: Path, repo_id: str) -> dict[str, bytes]:
    """The pairs dataset repo's files: README.md, train.jsonl and eval.jsonl, as bytes.

    Each JSONL line resolves a pair's chunk id to its text, so the dataset stands alone:
    {"query": "…", "chunk_id": "c-1a2b…", "chunk_text": "…", "source": "a.pdf", "pages": [3], "kind": "keyphrase"}
    """
    from .records import Chunk, Pair, RunDirError, read_jsonl
    from .runfiles import RunFiles

    run_dir = Path(run_dir)
    files = RunFiles(run_dir)
    paths = (files.chunks, files.split("train"), files.split("eval"))
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise HubError(
            f"--with-data needs {', '.join(missing)} in {run_dir}: rerun `ragtune run` into it, "
            "or push without --with-data"
        )
    try:
        chunks = {c.id: c for c in read_jsonl(files.chunks, Chunk)}
        splits = {s: read_jsonl(files.split(s), Pair) for s in ("train", "eval")}
    except RunDirError as e:
        raise HubError(f"cannot push the pairs: {e}") from None
    out: dict[str, bytes] = {}
    for split, pairs in splits.items():
        dangling = sorted({p.chunk_id for p in pairs} - chunks.keys())
        if dangling:
            raise HubError(
                f"cannot push the pairs: {files.split(split)} points at "
                f"{len(dangling)} chunk id(s) missing from chunks.jsonl (e.g. {dangling[0]!r}); "
                f"rerun `ragtune run` into {run_dir}"
            )
        rows = [
            {
                "query": p.query,
                "chunk_id": p.chunk_id,
                "chunk_text": chunks[p.chunk_id].text,
                "source": chunks[p.chunk_id].source,
                "pages": list(chunks[p.chunk_id].pages),
                "kind": p.kind,
            }
            for p in pairs
        ]
        out[f"{split}.jsonl"] = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    readme = _dataset_card(repo_id, splits, sorted({c.source for c in chunks.values()}))
    return {"README.md": readme.encode(), **out}


def _size_category(n: int) -> str:
    """The Hub's size_categories bucket for `n` rows.

    >>> _size_category(999), _size_category(1000), _size_category(250_000)
    ('n<1K', '1K<n<10K', '100K<n<1M')
    """
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


def _dataset_card(repo_id: str, splits: dict[str, list], sources: list[str]) -> str:
    """The pairs dataset's README: front matter the Hub reads, then what the rows are."""
    generators = sorted({p.generator for pairs in splits.values() for p in pairs if p.generator})
    by = f"ragtune's `{'`, `'.join(generators)}` generator" if generators else "ragtune's generator"
    counts = "\n".join(f"| {s} | {len(pairs)} | {len({p.chunk_id for p in pairs})} |" for s, pairs in splits.items())
    return f"""---
task_categories:
- sentence-similarity
- text-retrieval
tags:
- ragtune
- synthetic
size_categories:
- {_size_category(sum(len(p) for p in splits.values()))}
configs:
- config_name: default
  data_files:
  - split: train
    path: train.jsonl
  - split: eval
    path: eval.jsonl
---

# {dataset_repo_id(repo_id)}

Synthetic questions written by {by} over the source documents listed below, each paired
with the chunk of text it should retrieve. They fine-tuned and evaluated the embedding model
[{repo_id}](https://huggingface.co/{repo_id}); the eval questions are about chunks it never trained on.

Source documents: {", ".join(sources) or "(none)"}

| split | questions | chunks |
|---|---:|---:|
{counts}

Fields: `query`, `chunk_id`, `chunk_text`, `source`, `pages` (1-based page numbers), `kind` (question style).
"""


def card_with_dataset(card: str, dataset_id: str) -> str:
    """The model card with `dataset_id` listed under `datasets:` in its YAML front matter.

    >>> print(card_with_dataset("---\\nlibrary_name: x\\n---\\n# m\\n", "alice/m-pairs"), end="")
    ---
    datasets:
    - alice/m-pairs
    library_name: x
    ---
    # m
    """
    import yaml

    match = re.match(r"---\n(.*?)^---[ \t]*\n", card, re.S | re.M)
    if match is None:
        return f"---\ndatasets:\n- {dataset_id}\n---\n" + card
    front = match[1]
    try:
        meta = yaml.safe_load(front) or {}
    except yaml.YAMLError:
        raise HubError(
            "the model card's YAML front matter does not parse; fix model/README.md or push without --with-data"
        ) from None
    existing = meta.get("datasets") if isinstance(meta, dict) else None
    listed = [existing] if isinstance(existing, str) else list(existing or [])
    # Drop a top-level datasets: block (inline or as a list), then write the merged list first.
    front = re.sub(r"^datasets:[^\n]*\n(?:[ \t-][^\n]*\n)*", "", front, flags=re.M)
    listed += [dataset_id] if dataset_id not in listed else []
    block = "datasets:\n" + "".join(f"- {d}\n" for d in listed)
    return "---\n" + block + front + card[match.end(1) :]


def _card_for_upload(run_dir: Path, repo_id: str, dataset_id: str | None) -> bytes | None:
    """The card as uploaded: rendered again from RUN/card.json for the real repo id (its name and the
    `SentenceTransformer("REPO_ID")` lines), and naming the pairs dataset; None to upload the card on disk."""
    from .card import render_card
    from .runfiles import RunFiles

    saved = RunFiles(Path(run_dir)).card_json
    if saved.is_file():
        try:
            parts = json.loads(saved.read_text(encoding="utf-8"))
            return render_card(parts["summary"], parts["metrics"], repo_id, dataset_id).encode()
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            logger.warning("%s does not parse; uploading model/README.md as it is", saved)
    if dataset_id is None:
        return None
    model_dir = Path(run_dir) / "model"
    path = model_dir / "README.md"
    # A README.md that links out of model/ is not uploaded (see _regular_files), nor read into the card.
    card = path.read_text(encoding="utf-8") if path.is_file() and _inside(path, model_dir) else ""
    return card_with_dataset(card, dataset_id).encode()


def what_leaves(run_dir: Path, repo_id: str, with_data: bool = False) -> str:
    """One line that names what a push of `run_dir` takes off this machine, for the CLI to show before it
    uploads: the weights, and the card with the excerpts of the user's documents its widget quotes.

    ragtune's choice: the excerpts go up without a flag (the widget is what a Hub reader tries first), and this
    line says so every time; they are a question and whole sentences of three chunks that read clean.
    """
    card = _card_for_upload(run_dir, repo_id, dataset_repo_id(repo_id) if with_data else None)
    if card is None:
        path = Path(run_dir) / "model" / "README.md"
        card = path.read_bytes() if path.is_file() else b""
    widget = _card_widget(card.decode("utf-8", errors="replace"))
    quoted = sum(len(w.get("sentences") or []) for w in widget)
    excerpts = (
        f"{quoted} excerpts of your documents and {len(widget)} question in its widget"
        if quoted
        else "no excerpt of your documents"
    )
    data = f"; with --with-data, every question and chunk to {dataset_repo_id(repo_id)}" if with_data else ""
    return (
        f"Leaving this machine for {repo_id}: the model weights and the model card (metrics, settings, "
        f"{excerpts}){data}."
    )


def _card_widget(card: str) -> list[dict[str, Any]]:
    import yaml

    match = re.match(r"---\n(.*?)^---[ \t]*\n", card, re.S | re.M)
    try:
        front = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return []
    widget = front.get("widget") if isinstance(front, dict) else None
    return [w for w in widget if isinstance(w, dict)] if isinstance(widget, list) else []


def check_metrics(run_dir: Path, force: bool = False, force_hint: str = "pass --force to push anyway") -> None:
    """Refuse to publish a model that did not beat its base model, unless forced.

    A run without metrics.json is refused too: nobody has checked that it helps.
    `force_hint` says how to push anyway (`ragtune run --push` has no --force).
    """
    if force:
        return
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise HubError(f"not pushing: {path} is missing, so the model was never evaluated; {force_hint}")
    from .rundir import rerun_command
    from .runfiles import metrics_problem

    # What the push and the uploaded card read: the figures before and after, and the verdict.
    problem = metrics_problem(path, tables=("before", "after"), fields=("improved",))
    if problem:
        raise HubError(
            f"not pushing: {path}{problem.removeprefix(path.name)}; rerun {rerun_command(Path(run_dir))} "
            f"to evaluate the model again (or {force_hint})"
        )
    improved = json.loads(path.read_text(encoding="utf-8")).get("improved")
    if improved is not True:
        # json.dumps so the message shows the file's spelling: false, null.
        raise HubError(
            f"not pushing: {path.name} does not show the fine-tuned model beating the base model "
            f"(improved={json.dumps(improved)}); {force_hint}"
        )


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


def push(
    run_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    force: bool = False,
    with_data: bool = False,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float | None = None,
    api: HfApi | None = None,
    force_hint: str = "pass --force to push anyway",
    timeout_hint: str = f"--timeout or {TIMEOUT_ENV}",
    warn: Callable[[str], None] | None = None,
) -> str:
    """Create `repo_id` if needed and upload `run_dir/model` in one commit; return the commit URL.

    With `with_data`, the pairs dataset `repo_id + "-pairs"` (same visibility) is
    created and uploaded first, in one commit, and the uploaded card lists it.
    Transient failures (5xx, 429, connection errors, timeouts) are retried up to
    `retries` times, waiting `backoff`, 2*`backoff`, ... seconds in between. Each
    request times out after `timeout` seconds without progress (see `resolve_timeout`).
    A model that did not improve is refused with `force_hint` as the advice, and a timeout
    names `timeout_hint` as what allows longer (`run --push` has neither flag); what the
    model folder holds that does not go up is told to `warn` (default: a logging warning).

    >>> push(Path("runs/latest"), "alice/minilm", private=True)  # doctest: +SKIP
    'https://huggingface.co/alice/minilm/commit/3f2a…'
    """
    plan = plan_push(run_dir, repo_id, private, with_data)
    check_metrics(run_dir, force, force_hint)
    seconds = resolve_timeout(timeout)
    secret = resolve_token(token)
    api = api if api is not None else get_api()
    sources, left_out = _model_files(run_dir, repo_id)
    contents: dict[str, Path | bytes] = dict(sources)
    if left_out:
        (warn or (lambda line: logger.warning("%s", line)))(left_out_line(left_out))
    context = _ErrorContext(
        repo_id=repo_id, endpoint=api.endpoint, token=secret, timeout=seconds, timeout_hint=timeout_hint
    )
    with _request_timeouts(seconds):
        if plan.dataset_repo_id:
            data = dataset_files(run_dir, repo_id)
            _upload(
                api, plan.dataset_repo_id, "dataset", private, data, DATASET_COMMIT_MESSAGE, context, retries, backoff
            )
            logger.info("pushed %d files (%d bytes) to dataset %s", len(data), plan.dataset_bytes, plan.dataset_repo_id)
        # The uploaded card names the repo (and the dataset); model/README.md on disk stays as it is.
        card = _card_for_upload(run_dir, repo_id, plan.dataset_repo_id)
        if card is not None:
            contents["README.md"] = card
        # One commit holds the whole model, so a half-pushed model is never visible.
        info = _upload(api, repo_id, "model", private, contents, COMMIT_MESSAGE, context, retries, backoff)
    logger.info("pushed %d files (%d bytes) to %s", len(plan.files), plan.total_bytes, repo_id)
    return info.commit_url


def _upload(
    api: HfApi,
    repo_id: str,
    repo_type: str,
    private: bool,
    contents: dict[str, Path | bytes],
    message: str,
    context: _ErrorContext,
    retries: int,
    backoff: float,
) -> CommitInfo:
    """Create the repo if needed, then commit `contents` (path in repo -> file or bytes) in one commit."""
    from huggingface_hub import CommitOperationAdd

    secret = context.token
    context = replace(context, repo_id=repo_id)  # errors name the repo this call is about

    def create() -> RepoUrl:
        return api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, token=secret)

    def commit() -> CommitInfo:
        # Fresh operations each attempt: a failed attempt leaves upload state on the old ones.
        operations = [
            CommitOperationAdd(path_in_repo=rel, path_or_fileobj=src if isinstance(src, bytes) else str(src))
            for rel, src in sorted(contents.items())
        ]
        return api.create_commit(repo_id, operations, commit_message=message, repo_type=repo_type, token=secret)

    _call_hub(create, context, retries, backoff)
    return _call_hub(commit, context, retries, backoff)


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


# --- models named by a Hub id, for `ragtune pairs` and `ragtune similarity` --------------------------


def _hf_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


PRESET_HINT = "download it once with network access, pass --base-model PATH to a local copy, or use --preset small"


def resolve_pairs_model(base_model: str, hint: str = PRESET_HINT) -> str:
    """Something `load_model` can open without a long stall: a path, or a Hub id known to be reachable.

    A Hub id already in the local cache is used from there; otherwise, offline
    or when the Hub cannot be reached, a one-line PairsError says what to do
    (transformers would otherwise retry for over a minute).
    """
    from .models import resolve_base_model

    source = resolve_base_model(base_model)
    if not base_model or Path(source).exists():
        return source
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(source, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if _hf_offline():
        raise PairsError(f"{source} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; {hint}")
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        get_api().model_info(source, timeout=10)
    except RepositoryNotFoundError:
        raise PairsError(
            f"{source} is neither a local folder nor a model on the Hugging Face Hub (or it is "
            "private); check the name or pass a local path"
        ) from None
    except Exception as e:  # any failure here means the download below would fail too
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise PairsError(f"{source} is not downloaded and the Hub cannot be reached ({reason}); {hint}") from None
    return source
