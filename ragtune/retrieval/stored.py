"""What a run keeps of its retriever: retriever.json, and the base model's vectors for `search --compare`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..fileio import write_json
from ..models import weights_digest
from ..records import FORMAT_VERSION
from ..rundir import hash_parts
from ..runfiles import RunFiles
from .dense import DenseIndex


def write_settings(folder: Path, settings: dict[str, Any]) -> None:
    write_json(folder / "retriever.json", settings)


# What retriever.json holds, and the type each setting must have.
SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "format": (int,),
    "passage_words": (int,),
    "passage_stride": (int,),
    "chunk_weight": (int, float),
    "hybrid_weight": (int, float),
    "mode": (str,),
}


def read_settings(folder: Path) -> dict[str, Any]:
    """retriever.json's settings ({} when there is none); ValueError says what is wrong with a damaged one.

    >>> import tempfile; d = Path(tempfile.mkdtemp()); _ = (d / "retriever.json").write_text('{"chunk_weight": "x"}')
    >>> read_settings(d)
    Traceback (most recent call last):
    ...
    ValueError: "chunk_weight" is 'x', not a number
    """
    path = folder / "retriever.json"
    if not path.exists():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON: {e.msg}, line {e.lineno}") from None
    if not isinstance(settings, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004  (a damaged file, not a wrong argument)
    for name, types in SETTING_TYPES.items():
        value = settings.get(name)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise ValueError(f'"{name}" is {value!r}, not {"a number" if float in types else types[0].__name__}')
    return settings


# The base model's index of a run's retrieval units, written by the evaluate stage so that
# `search --compare` (load_retriever(which="base")) does not encode the corpus a second time.
BASE_VECTORS = Path("work") / "embeddings" / "base"  # RunFiles.base_vectors, which also finds a run's from before work/


def save_base_vectors(run_dir: Path, index: DenseIndex, about: dict[str, Any]) -> None:
    """`index` and what it was built from (`about`: base model, max_seq_length, passage settings, texts digest)."""
    # about.json goes first and comes back last: a write cut off in between leaves no about.json,
    # so the half-replaced index is never taken for the one it describes.
    (run_dir / BASE_VECTORS / "about.json").unlink(missing_ok=True)
    index.save(run_dir / BASE_VECTORS)
    write_json(run_dir / BASE_VECTORS / "about.json", about)


def base_vectors_about(
    base_model: str, model: Any, texts: Sequence[str], passage_words: int, passage_stride: int
) -> dict[str, Any]:
    """What a base index of `texts` is built from, as saved beside it and compared on reuse: the one key
    for the evaluate stage (which writes the vectors) and `search --compare` (which reads them).

    `model` is the loaded base model with the max_seq_length it encodes with: read from the model itself,
    never from sentence_bert_config.json, which sentence-transformers 6 no longer fills.
    """
    return {
        "format": FORMAT_VERSION,
        "base_model": base_model,
        "weights": weights_digest(model),
        "max_seq_length": int(model.max_seq_length),
        "passage_words": int(passage_words),
        "passage_stride": int(passage_stride),
        "texts": hash_parts(*texts),
    }


def load_base_vectors(run_dir: Path, about: dict[str, Any], chunk_weight: float) -> DenseIndex | None:
    """The saved base index when it was built from what `about` says, else None (then encode again)."""
    folder = RunFiles(run_dir).base_vectors
    try:
        saved = json.loads((folder / "about.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or any(saved.get(k) != v for k, v in about.items()):
        return None
    try:
        return DenseIndex.load(folder, chunk_weight)
    except (OSError, ValueError, RuntimeError):  # faiss raises RuntimeError for a damaged file
        return None
