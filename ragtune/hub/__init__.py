"""Publish a run's model folder (and, optionally, its question pairs) to the Hugging Face Hub.

This is the only package that talks to the Hub, and `get_api()` is the only place
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
The package: repo_ids.py, client.py (the client, token, timeouts), calls.py (retries, errors), upload.py (push),
dataset.py (the pairs dataset repo), resolve.py (Hub models for `ragtune pairs`)."""

from __future__ import annotations

from ..errors import HubError
from ..repo_ids import DATASET_SUFFIX, dataset_repo_id, repo_id_problem, validate_repo_id
from .calls import TRANSIENT_STATUSES
from .client import DEFAULT_TIMEOUT_S, TIMEOUT_ENV, get_api, resolve_timeout, resolve_token
from .dataset import card_with_dataset, dataset_files
from .resolve import PRESET_HINT, resolve_pairs_model
from .upload import (
    COMMIT_MESSAGE,
    DATASET_COMMIT_MESSAGE,
    PushPlan,
    _card_for_upload,
    check_metrics,
    left_out_line,
    plan_push,
    push,
    what_leaves,
)

__all__ = [
    "COMMIT_MESSAGE",
    "DATASET_COMMIT_MESSAGE",
    "DATASET_SUFFIX",
    "DEFAULT_TIMEOUT_S",
    "HubError",
    "PRESET_HINT",
    "PushPlan",
    "TIMEOUT_ENV",
    "TRANSIENT_STATUSES",
    "_card_for_upload",
    "card_with_dataset",
    "check_metrics",
    "dataset_files",
    "dataset_repo_id",
    "get_api",
    "left_out_line",
    "plan_push",
    "push",
    "repo_id_problem",
    "resolve_pairs_model",
    "resolve_timeout",
    "resolve_token",
    "validate_repo_id",
    "what_leaves",
]
