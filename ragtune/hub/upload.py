"""What a push uploads (plan_push, what_leaves), the checks before it, and the push itself."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..card import render_card
from ..errors import HubError
from ..names import upgrade_metrics
from ..repo_ids import dataset_repo_id, validate_repo_id
from ..rundir import rerun_command
from ..runfiles import RunFiles, metrics_problem
from .calls import _call_hub, _ErrorContext
from .client import TIMEOUT_ENV, _request_timeouts, get_api, resolve_timeout, resolve_token
from .dataset import card_with_dataset, dataset_files

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, HfApi, RepoUrl

logger = logging.getLogger(__name__)
COMMIT_MESSAGE = "Upload fine-tuned embedding model (ragtune)"
DATASET_COMMIT_MESSAGE = "Upload synthetic question-chunk pairs (ragtune)"


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


def _card_for_upload(run_dir: Path, repo_id: str, dataset_id: str | None) -> bytes | None:
    """The card as uploaded: rendered again from RUN/card.json for the real repo id (its name and the
    `SentenceTransformer("REPO_ID")` lines), and naming the pairs dataset; None to upload the card on disk."""
    saved = RunFiles(Path(run_dir)).card_json
    if saved.is_file():
        try:
            parts = json.loads(saved.read_text(encoding="utf-8"))
            # card.json of a run an older ragtune saved has its names.
            metrics = upgrade_metrics(parts["metrics"])
            return render_card(parts["summary"], metrics, repo_id, dataset_id).encode()
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
    # What the push and the uploaded card read: the base and fine-tuned figures, and the verdict.
    problem = metrics_problem(path, tables=("base", "fine_tuned"), fields=("improved",))
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
