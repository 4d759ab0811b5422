"""Models named by a Hub id, for `ragtune pairs` and `ragtune similarity`: found offline first."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import PairsError
from ..models import resolve_base_model
from .client import get_api


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
