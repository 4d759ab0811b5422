"""What gets embedded: each chunk, and its passages (windows of whole sentences)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..text import sentences


def passages_of(text: str, min_words: int, stride: int = 1) -> list[str]:
    """Windows of the chunk's whole sentences, each at least `min_words` words, in order.

    A window starts at every `stride`-th sentence, and never past the sentence after the
    previous window, so every sentence is in one; once a window reaches the chunk's end
    no later one is made, and the last is the shortest run of final sentences that is long
    enough. Stride 0 cuts the sentences into runs without overlap (a short tail joins the
    last run). None when that leaves a single window (the chunk vector already covers it)
    or `min_words` is 0.
    """
    if min_words < 1:
        return []
    sents = sentences(text)
    counts = [len(s.split()) for s in sents]
    out: list[str] = []
    start = 0
    while start < len(sents):
        end, total = start, 0
        while end < len(sents) and total < min_words:
            total += counts[end]
            end += 1
        if total < min_words:
            if not out:
                break
            if stride < 1:
                out[-1] += " " + " ".join(sents[start:])
            else:
                # Too few words left from here: the last window reaches back until it has enough.
                while start > 0 and total < min_words:
                    start -= 1
                    total += counts[start]
                out.append(" ".join(sents[start:]))
            break
        out.append(" ".join(sents[start:end]))
        start = end if stride < 1 else min(start + stride, end)
        if end == len(sents):
            break
    return out if len(out) > 1 else []


@dataclass(frozen=True)
class Units:
    """Texts to embed: the chunks first (row i is chunk i), then every chunk's passages."""

    texts: list[str]
    owner: np.ndarray  # int64, row -> chunk position
    n_chunks: int


def retrieval_units(chunk_texts: Sequence[str], min_words: int, stride: int = 1) -> Units:
    """The chunk texts, followed by their passages (`min_words` 0: the chunks alone)."""
    texts, owner = list(chunk_texts), list(range(len(chunk_texts)))
    for i, text in enumerate(chunk_texts):
        for passage in passages_of(text, min_words, stride):
            texts.append(passage)
            owner.append(i)
    return Units(texts, np.asarray(owner, dtype=np.int64), len(chunk_texts))
