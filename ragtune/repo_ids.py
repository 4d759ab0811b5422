"""Hub repo ids: which ones can be pushed to (a one-line reason when not), and the pairs dataset's id.

A leaf module (it imports only errors), so config can check a --push repo id without importing the Hub package.
"""

from __future__ import annotations

import re

from .errors import HubError

# The pairs dataset of model repo "alice/minilm" is "alice/minilm-pairs".
DATASET_SUFFIX = "-pairs"
# Hub rules: letters, digits, '-', '_', '.'; no '--' or '..'; at most 96 characters.
_REPO_PART = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
# A Hugging Face access token ("hf_" and 30-odd letters and digits), pasted where the repo id goes.
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{16,}")


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
