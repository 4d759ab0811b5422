"""Re-embed a collection an app already uses with the tuned model, into a new collection beside it.

Every stored record keeps its id and payload (the app's own chunking and metadata); only its dense
vector is new. The new collection is named after the old one and the tuned model's weights
("docs-ragtune-3f9a…"), so a rerun after an interruption finds it, encodes only the records it lacks,
and a different model never mixes its vectors in. Once every record is there with its payload, the
app's name is switched (Qdrant: an alias, in one request) or the one line to switch is returned.
The old collection stays until `drop_old`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import StoreError
from ..retrieval import embed
from .base import Store

# A collection counts as embedded by the run's base model when the stored vectors of a sample of
# its records have at least this median cosine with the base model's vectors of their texts.
SAME_MODEL_COSINE = 0.95
SAMPLE = 16


@dataclass(frozen=True)
class ReindexResult:
    old: str
    new: str
    n_records: int
    n_encoded: int  # this time; the rest were already in `new` from an interrupted run
    switched: str  # what was done to point the app at `new`, or the line that does


def new_name(old: str, digest: str) -> str:
    """
    >>> new_name("docs", "3f9a0c1d2e4b5a6978")
    'docs-ragtune-3f9a0c1d2e4b'
    """
    return f"{old}-ragtune-{digest[:12]}"


def check_model(store: Store, old: str, base: Any, text_key: str | None) -> None:
    """Refuse a collection the run's base model did not embed: its vectors would not be what the app expects."""
    sample = store.sample_vectors(old, text_key, SAMPLE)
    if not sample:
        return
    stored = np.asarray([v for _, v in sample], dtype=np.float32)
    stored /= np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
    fresh = embed(base, [t for t, _ in sample])
    if stored.shape[1] != fresh.shape[1]:
        raise StoreError(
            f"collection {old} holds vectors of size {stored.shape[1]}, the run's base model makes "
            f"{fresh.shape[1]}: it was embedded by another model; reindex it with a run tuned from that "
            "model"
        )
    cosine = float(np.median((stored * fresh).sum(axis=1)))
    if cosine < SAME_MODEL_COSINE:
        raise StoreError(
            f"collection {old} was not embedded by this run's base model (median cosine {cosine:.2f} "
            f"over {len(sample)} records); reindex it with a run tuned from the model that built it, "
            "or pass --any-model if its texts were embedded with a prefix"
        )


def reindex(
    store: Store,
    name: str,
    model: Any,
    digest: str,
    text_key: str | None = None,
    base_model: Any = None,
    drop_old: bool = False,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> ReindexResult:
    """Re-embed collection (or alias) `name` with `model` into a new collection and switch `name` to it.

    `digest` names the model's weights (models.weights_digest); `base_model`, when given, must be the model
    that embedded the collection (checked on a sample of records) before anything is written.
    """
    old = store.resolve(name)
    if not store.exists(old):
        raise StoreError(f"{store.kind} has no collection {name}; pass the --collection your app uses")
    dim = int(model.get_embedding_dimension())
    old_dim = store.dimension(old)
    if old_dim is not None and old_dim != dim:
        raise StoreError(
            f"collection {old} holds vectors of size {old_dim}, the tuned model makes {dim}: it was "
            "embedded by another model; reindex it with a run tuned from that model"
        )
    source = store.about(old).get("source")
    if source and store.exists(source):
        # The name points at an earlier reindex: re-embed the app's original collection again, so the
        # base-model check means something and names do not pile up ("docs-ragtune-a-ragtune-b").
        old = source
    elif source:
        # The original was dropped (--drop-old): re-embed the earlier reindex; its vectors come from
        # an earlier tuned model, so the base-model check cannot apply.
        base_model = None
    new = new_name(source or old, digest)
    total = store.count(old)
    if store.exists(new):
        mine = store.about(new)
        if mine.get("source") != old or mine.get("model") != digest:
            raise StoreError(
                f"collection {new} exists but was not written by ragtune reindex of {old} with this "
                "model; rename or delete it, then rerun"
            )
        done = store.ids(new)
    else:
        if base_model is not None:
            check_model(store, old, base_model, text_key)
        store.create_like(new, old, dim, {"source": old, "model": digest})
        done = set()
    resumed = len(done)
    encoded = 0
    if progress is not None:
        progress(resumed, total)
    for batch in store.scan(old, text_key, batch_size):
        todo = [r for r in batch if r.id not in done]
        if todo:
            store.write(new, todo, embed(model, [r.text for r in todo]))
            encoded += len(todo)
        if progress is not None:
            progress(min(resumed + encoded, total), total)
    verify(store, old, new, text_key)
    return ReindexResult(old, new, total, encoded, store.switch(name, old, new, drop_old))


def verify(store: Store, old: str, new: str, text_key: str | None) -> None:
    """Every record of `old` is in `new` with the same payload, and nothing else is."""
    n_old, n_new = store.count(old), store.count(new)
    payloads = {r.id: r.payload for batch in store.scan(new, text_key) for r in batch}
    missing = changed = 0
    for batch in store.scan(old, text_key):
        for r in batch:
            if r.id not in payloads:
                missing += 1
            elif payloads[r.id] != r.payload:
                changed += 1
    if n_old != n_new or missing or changed:
        raise StoreError(
            f"{new} does not match {old} ({n_new} records against {n_old}, {missing} missing, "
            f"{changed} with another payload); nothing was switched and {old} is untouched: "
            "rerun to finish it"
        )
