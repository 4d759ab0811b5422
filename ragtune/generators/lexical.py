"""Lexical distillation: pseudo-queries from the corpus, labelled by BM25 (after SPAR).

A dense model misses rare terms that BM25 matches exactly. Following SPAR
(Chen et al., 2021, "Salient Phrase Aware Dense Retrieval: Can a Dense Retriever
Imitate a Sparse One?"), spans of the corpus's own sentences are used as cheap
queries and BM25 labels them: the chunk it ranks first becomes the positive. As in
the inverse cloze task, the span's sentence is taken out of every chunk that holds
it most of the time, so the label is the chunk that BM25 finds *from the rest of
the text*, not the trivial exact match; training on these pairs teaches the model
which chunks share a query's rare terms.

>>> bm = BM25Counts(["zero trust architecture assumes breach", "incident response plan", "trust boundaries"])
>>> [round(float(x), 3) for x in bm.scores("zero trust")]
[1.184, 0.0, 0.573]
>>> float(bm.scores("zero trust", without=([0], "zero trust architecture assumes breach"))[0])
0.0
"""

from __future__ import annotations

import math
import random
from typing import Sequence

import numpy as np

from ..records import Chunk, Pair
from ..text import STOPWORDS, clean_query, sentences, words

KIND = "lexical"


def terms(text: str) -> list[str]:
    """The words BM25 counts: lowercased, no stopwords or single letters."""
    return [w for w in words(text) if w not in STOPWORDS and len(w) > 1]


class BM25Counts:
    """BM25 (k1 1.5, b 0.75) over term counts kept per chunk, so that a text can be
    taken out of chunks for one query without rebuilding the index."""

    def __init__(self, texts: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        from scipy import sparse

        self.vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        self.lengths = np.zeros(len(texts))
        for i, text in enumerate(texts):
            tf: dict[int, int] = {}
            for t in terms(text):
                j = self.vocab.setdefault(t, len(self.vocab))
                tf[j] = tf.get(j, 0) + 1
            self.lengths[i] = sum(tf.values())
            rows += [i] * len(tf)
            cols += list(tf)
            vals += list(tf.values())
        self.tf = sparse.csc_matrix((vals, (rows, cols)), shape=(len(texts), len(self.vocab)), dtype=np.float64)
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(self.vocab))
        n = len(texts)
        self.idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        self.k1, self.b = k1, b
        self.mean_length = float(self.lengths.mean()) if n else 1.0

    def scores(self, query: str, without: tuple[Sequence[int], str] | None = None) -> np.ndarray:
        """BM25 of `query` against every chunk; `without` = (chunk positions, text): score
        those chunks as if `text` were not in them."""
        q = {self.vocab[t] for t in terms(query) if t in self.vocab}
        out = np.zeros(self.tf.shape[0])
        lengths = self.lengths
        removed: dict[int, int] = {}
        holders = np.asarray([], dtype=np.int64)
        if without is not None:
            holders = np.asarray(without[0], dtype=np.int64)
            for t in terms(without[1]):
                if t in self.vocab:
                    removed[self.vocab[t]] = removed.get(self.vocab[t], 0) + 1
            lengths = lengths.copy()
            lengths[holders] = np.maximum(lengths[holders] - sum(removed.values()), 0)
        norm = self.k1 * (1 - self.b + self.b * lengths / self.mean_length)
        for j in q:
            start, end = self.tf.indptr[j], self.tf.indptr[j + 1]
            docs, tf = self.tf.indices[start:end], self.tf.data[start:end]
            if j in removed:
                tf = np.where(np.isin(docs, holders), np.maximum(tf - removed[j], 0), tf)
            out[docs] += self.idf[j] * tf * (self.k1 + 1) / (tf + norm[docs])
        return out


def span_counts(chunks: Sequence[Chunk], per_chunk: int) -> list[int]:
    """How many spans `lexical_pairs` can take from each chunk, at most `per_chunk`: what a plan counts before
    the split stage runs. (lexical_pairs then drops a few, for too few terms or no BM25 match, takes none from
    chunks without training questions, and files each under the chunk BM25 ranks first.)

    >>> text = "Zero trust architecture assumes breach at every layer. Short one."
    >>> span_counts([Chunk("a", "f", (1,), text, 9)], 8)
    [1]
    """
    split, holders = _sentence_holders(chunks)
    return [min(per_chunk, len(_candidates(sents, holders))) for sents in split] if per_chunk > 0 else [0] * len(split)


def _sentence_holders(chunks: Sequence[Chunk]) -> tuple[list[list[str]], dict[str, list[int]]]:
    """Each chunk's sentences, and the positions of the chunks that hold each sentence."""
    split = [sentences(c.text) for c in chunks]
    holders: dict[str, list[int]] = {}
    for i, sents in enumerate(split):
        for s in set(sents):
            holders.setdefault(s, []).append(i)
    return split, holders


def _candidates(sents: list[str], holders: dict[str, list[int]]) -> list[tuple[str, str]]:
    """A chunk's sentences that can become queries, as (sentence, query): not repeated across the corpus (headers,
    disclaimers), of 6+ words, mostly letters."""
    usable = [(s, clean_query(s)) for s in sents if len(holders[s]) < 3]
    return [(s, q) for s, q in usable if len(q.split()) >= 6 and sum(ch.isalpha() for ch in q) > 0.7 * len(q)]


def span_of(sentence: str, rng: random.Random, shortest: int = 6, longest: int = 12) -> str:
    """The sentence itself when short, else a random run of `shortest`..`longest` of its words.

    >>> span_of("Zero trust assumes no implicit trust.", random.Random(0))
    'Zero trust assumes no implicit trust.'
    """
    ws = sentence.split()
    if len(ws) <= longest:
        return sentence
    n = rng.randint(shortest, longest)
    i = rng.randint(0, len(ws) - n)
    return " ".join(ws[i : i + n])


def lexical_pairs(
    chunks: Sequence[Chunk], allowed: set[str], per_chunk: int, seed: int, remove: float = 0.9, min_terms: int = 3
) -> list[Pair]:
    """Up to `per_chunk` BM25-labelled pseudo-queries for every chunk in `allowed`.

    Each query is a span of one of the chunk's sentences. With probability
    `remove` the sentence is first taken out of every chunk that holds it; the
    positive is BM25's best chunk among `allowed` (held-out chunks are never
    labels). Sentences repeated across the corpus (headers, disclaimers) and
    spans with fewer than `min_terms` BM25 terms are skipped.
    """
    if per_chunk <= 0:
        return []
    rng = random.Random(seed)
    bm25 = BM25Counts([c.text for c in chunks])
    split, holders = _sentence_holders(chunks)
    ok = np.array([c.id in allowed for c in chunks])
    pairs = []
    for i, _c in enumerate(chunks):
        if not ok[i]:
            continue
        candidates = _candidates(split[i], holders)
        rng.shuffle(candidates)
        for raw, sentence in candidates[:per_chunk]:
            query = span_of(sentence, rng)
            if len(terms(query)) < min_terms:
                continue
            without = (holders[raw], raw) if rng.random() < remove else None
            scores = np.where(ok, bm25.scores(query, without), -math.inf)
            best = int(np.argmax(scores))
            if scores[best] > 0:
                pairs.append(Pair(query, chunks[best].id, "bm25", KIND))
    return pairs
