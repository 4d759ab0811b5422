"""Long inputs: training rows whose positive is a window of neighbouring chunks, and the batches that
keep them apart.

Apps chunk at 512-1000 tokens; ragtune's chunks are about 256. A share of the training rows therefore
pairs a chunk's questions with a long window: the chunk with its neighbours from the same document, up
to the model's position limit. Such a window holds other chunks' text, so a question of one of those
chunks must never see it as an in-batch negative: every row carries the ids of the chunks its texts
cover, and a batch never holds two rows that share one (`KeepApartBatchSampler`). Long rows also go in
batches of their own, so a 512-token window never pads a batch of 256-token chunks to its length.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterator

from ..models import max_positions
from ..records import Chunk

# The longest input a saved model is set to read, whatever its position limit: what apps chunk at.
SERVE_MAX_TOKENS = 512
# A tag the sampler adds beside a row's texts: it cannot collide with a text, which has no NUL.
_TAG = "\0chunk:"


@dataclass(frozen=True)
class Window:
    """A chunk with its neighbours: the text, and the ids of the chunks it holds, in document order."""

    text: str
    chunk_ids: tuple[str, ...]
    n_tokens: int


def serve_length(model: Any) -> int:
    """The max_seq_length a saved model should read: its position limit, at most SERVE_MAX_TOKENS."""
    return min(max_positions(model), SERVE_MAX_TOKENS)


def _join(left: str, right: str) -> str:
    """`left` then `right`, the text they overlap in (the chunker's overlap: whole words, at least
    10 characters) written once.

    >>> _join("one two three four", "two three four five")
    'one two three four five'
    >>> _join("alpha beta", "gamma")
    'alpha beta gamma'
    """
    for k in range(min(len(left), len(right)), 9, -1):
        if left.endswith(right[:k]) and (k == len(left) or left[-k - 1].isspace()):
            return left + right[k:]
    return f"{left} {right}"


def _cut(text: str, tokenizer: Any, max_tokens: int, keep_end: bool) -> str:
    """The first (or with `keep_end` the last) `max_tokens` tokens of `text`, cut at a token's edge."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if len(offsets) <= max_tokens:
        return text
    if max_tokens <= 0:
        return ""
    if keep_end:
        return text[offsets[-max_tokens][0] :].strip()
    return text[: offsets[max_tokens - 1][1]].strip()


def long_windows(
    chunks: list[Chunk], allowed: set[str], wanted: set[str], tokenizer: Any, max_tokens: int
) -> dict[str, Window]:
    """For each chunk id in `wanted`, the window of at most `max_tokens` tokens around it.

    `chunks` are in document order (as the chunk stage wrote them). A window grows from its chunk
    with the next and the previous chunk in turn, only through chunks of the same document that are
    in `allowed` (held-out and validation chunks never enter training, not even inside a window); the
    first neighbour that does not fit whole is cut to fill the window. A chunk with no allowed
    neighbour gets no window.
    """
    n_tokens = _counter(tokenizer)
    windows: dict[str, Window] = {}
    for i, chunk in enumerate(chunks):
        if chunk.id in wanted and chunk.id in allowed:
            window = _grow(chunks, i, allowed, tokenizer, n_tokens, max_tokens)
            if len(window.chunk_ids) > 1:
                windows[chunk.id] = window
    return windows


def _grow(chunks: list[Chunk], i: int, allowed: set[str], tokenizer: Any, n_tokens: Any, max_tokens: int) -> Window:
    """The window around chunks[i] (see long_windows)."""
    source = chunks[i].source
    text, ids, ends = chunks[i].text, [chunks[i].id], {"after": i, "before": i}
    sides = ["after", "before"]
    while sides:
        for side in list(sides):
            j = ends[side] + (1 if side == "after" else -1)
            if not 0 <= j < len(chunks) or chunks[j].source != source or chunks[j].id not in allowed:
                sides.remove(side)
                continue
            joined = _join(text, chunks[j].text) if side == "after" else _join(chunks[j].text, text)
            full = n_tokens(joined) <= max_tokens
            if not full:
                # Fill what is left with the neighbour's nearer end; the window is then as long as it gets.
                joined = _cut(joined, tokenizer, max_tokens, keep_end=side == "before")
                sides = []
                if len(joined) <= len(text) or n_tokens(joined) > max_tokens:
                    break
            text, ends[side] = joined, j
            ids = ids + [chunks[j].id] if side == "after" else [chunks[j].id] + ids
            if not full:
                break
    return Window(text, tuple(ids), n_tokens(text))


def _counter(tokenizer: Any) -> Any:
    def n_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return n_tokens


def long_row_choice(row_chunks: list[str], windows: dict[str, Window], share: float, seed: int) -> set[int]:
    """Which rows (by index) take their chunk's window as the positive: `share` of all rows, drawn
    (seeded) from those whose chunk has a window.

    >>> sorted(long_row_choice(["a", "a", "b", "c"], {"a": Window("w", ("a", "x"), 9)}, 0.5, 0))
    [0, 1]
    """
    eligible = [i for i, cid in enumerate(row_chunks) if cid in windows]
    n = min(len(eligible), round(share * len(row_chunks)))
    return set(random.Random(seed).sample(eligible, n))


def with_long_rows(
    rows: dict[str, list[str]], chunks: dict[str, Chunk], windows: dict[str, Window], share: float, seed: int
) -> tuple[dict[str, list[str]], Any]:
    """`rows` (ragtune.training.trainer.training_rows) with `share` of them taking their chunk's window
    as the positive, and the batch sampler that keeps them apart (`keep_apart_sampler`)."""
    by_text = {c.text: c.id for c in chunks.values()}
    row_chunks = [by_text[t] for t in rows["chunk"]]
    chosen = long_row_choice(row_chunks, windows, share, seed)
    positives = [windows[cid].text if i in chosen else t for i, (cid, t) in enumerate(zip(row_chunks, rows["chunk"]))]
    long = frozenset(windows[row_chunks[i]].text for i in chosen)
    return rows | {"chunk": positives}, keep_apart_sampler(text_tags(chunks, windows), long)


def text_tags(chunks: dict[str, Chunk], windows: dict[str, Window]) -> dict[str, list[str]]:
    """Text -> the ids of the chunks it covers, for every chunk and window text a row can hold."""
    tags: dict[str, set[str]] = {}
    for c in chunks.values():
        tags.setdefault(c.text, set()).add(c.id)
    for w in windows.values():
        tags.setdefault(w.text, set()).update(w.chunk_ids)
    return {text: sorted(ids) for text, ids in tags.items()}


class KeepApartBatchSampler:
    """Batches in which no two rows share a text or a chunk (by `tags`, text -> chunk ids), rows whose
    "chunk" column is one of the `long` texts in batches of their own.

    Made through `keep_apart_sampler`, which sentence-transformers' Trainer calls with the dataset;
    a dataset without a "chunk" column (labelled pairs) gets the plain no-duplicates rule.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        tags: dict[str, list[str]],
        long: frozenset[str],
        seed: int = 0,
        **_: Any,
    ) -> None:
        self.batch_size, self.drop_last, self.seed, self.epoch = batch_size, drop_last, seed, 0
        rows = dataset.to_dict()
        names = [n for n in rows if n != "dataset_name"]
        texts = [tuple(rows[n][i] for n in names) for i in range(len(dataset))]
        self.values = [
            {str(t) for t in row} | {_TAG + cid for t in row if isinstance(t, str) for cid in tags.get(t, ())}
            for row in texts
        ]
        positives = rows.get("chunk", [None] * len(dataset))
        self.is_long = [p in long for p in positives]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        groups = [sum(self.is_long), len(self.is_long) - sum(self.is_long)]
        if self.drop_last:
            return sum(n // self.batch_size for n in groups)
        return sum(-(-n // self.batch_size) for n in groups)

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        batches: list[list[int]] = []
        for group in (True, False):
            order = [i for i, long in enumerate(self.is_long) if long == group]
            rng.shuffle(order)
            batches += self._batches(order)
        rng.shuffle(batches)
        return iter(batches)

    def _batches(self, order: list[int]) -> list[list[int]]:
        """Greedy: each batch takes the next rows that share nothing with it; the rest wait for the next."""
        out = []
        while order:
            batch: list[int] = []
            seen: set[str] = set()
            rest = []
            for i in order:
                if len(batch) < self.batch_size and self.values[i].isdisjoint(seen):
                    batch.append(i)
                    seen |= self.values[i]
                else:
                    rest.append(i)
            if len(batch) == self.batch_size or not self.drop_last:
                out.append(batch)
            order = rest
        return out


def keep_apart_sampler(tags: dict[str, list[str]], long: frozenset[str]) -> Any:
    """The `batch_sampler` argument for the Trainer: a function of the dataset (and the Trainer's own
    arguments) that makes a KeepApartBatchSampler."""
    import functools

    return functools.partial(KeepApartBatchSampler, tags=tags, long=long)
