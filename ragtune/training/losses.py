"""The losses for labelled pairs (sentence1, sentence2, label in [0, 1]) and the columns they read.

Light on purpose (sentence-transformers is imported only when a loss is made), so that
the CLI can list the choices without loading torch.

>>> sorted(LOSSES)
['angle', 'cosent', 'cosine']
"""

from __future__ import annotations

from typing import Any

from ..config import LOSSES
from ..records import LabelledPair

__all__ = ["LOSSES", "labelled_columns", "make_loss"]


def make_loss(name: str, model: Any) -> Any:
    from sentence_transformers.sentence_transformer import losses

    return getattr(losses, LOSSES[name])(model)


def labelled_columns(pairs: list[LabelledPair]) -> dict[str, list[Any]]:
    # A column named "label" is what the Trainer hands to the loss as the target.
    return {
        "sentence1": [p.sentence1 for p in pairs],
        "sentence2": [p.sentence2 for p in pairs],
        "label": [float(p.label) for p in pairs],
    }
