"""Lexical distillation: BM25 with a sentence taken out, worked by hand, and the pairs it labels."""

from __future__ import annotations

import math

import pytest

from ragtune.generators.lexical import BM25Counts, lexical_pairs, span_of, terms
from ragtune.records import Chunk

DOCS = ["zero trust architecture assumes breach", "incident response plan", "trust boundaries"]


def bm25(tf: float, length: float, mean: float, idf: float, k1: float = 1.5, b: float = 0.75) -> float:
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / mean))


def test_scores_match_the_bm25_formula() -> None:
    # 3 chunks of 5, 3 and 2 terms; "zero" is in one chunk, "trust" in two.
    idf_zero, idf_trust = math.log(1 + 2.5 / 1.5), math.log(1 + 1.5 / 2.5)
    s = BM25Counts(DOCS).scores("zero trust")
    assert s[0] == pytest.approx(bm25(1, 5, 10 / 3, idf_zero) + bm25(1, 5, 10 / 3, idf_trust))
    assert s[1] == 0.0
    assert s[2] == pytest.approx(bm25(1, 2, 10 / 3, idf_trust))


def test_a_text_taken_out_no_longer_counts_and_shortens_its_chunk() -> None:
    bm = BM25Counts(DOCS)
    s = bm.scores("trust breach", without=([0], "assumes breach"))
    # Chunk 0 keeps "zero trust architecture" (3 terms): "breach" is gone, "trust" scores at the shorter length.
    assert s[0] == pytest.approx(bm25(1, 3, 10 / 3, math.log(1 + 1.5 / 2.5)))
    # Other chunks are scored as before.
    assert s[2] == pytest.approx(bm.scores("trust breach")[2])


def test_terms_drop_stopwords_and_single_letters() -> None:
    assert terms("The zero-trust model of a network, e.g. ZTA") == ["zero-trust", "model", "network", "zta"]


def test_span_of_a_long_sentence_is_a_run_of_its_words() -> None:
    import random

    sentence = " ".join(f"w{i}" for i in range(30))
    for seed in range(20):
        span = span_of(sentence, random.Random(seed))
        assert 6 <= len(span.split()) <= 12 and span in sentence


def chunk(i: int, text: str) -> Chunk:
    return Chunk(f"c{i}", "a.txt", (1,), text, 40)


CHUNKS = [
    chunk(
        0,
        "Zero trust architecture removes implicit trust in network location. Every request is authenticated "
        "by the policy engine before access.",
    ),
    chunk(1, "The policy engine grants access after every request is authenticated and authorized per session."),
    chunk(2, "Incident handlers preserve evidence and document each containment step for the lessons learned meeting."),
    chunk(3, "Held out: the lessons learned meeting reviews containment and evidence handling after each incident."),
]


def test_pairs_are_labelled_by_bm25_among_allowed_chunks_only() -> None:
    allowed = {"c0", "c1", "c2"}
    pairs = lexical_pairs(CHUNKS, allowed, per_chunk=4, seed=0, remove=1.0)
    assert pairs and {p.kind for p in pairs} == {"lexical"} and {p.generator for p in pairs} == {"bm25"}
    # A held-out chunk is neither a source of queries nor a label.
    assert {p.chunk_id for p in pairs} <= allowed
    assert not any(p.query in CHUNKS[3].text for p in pairs)
    # With the sentence always taken out, "Every request is authenticated by the policy engine before access."
    # from chunk 0 is labelled with chunk 1, which says the same in other words.
    labels = {p.query: p.chunk_id for p in pairs}
    assert labels["Every request is authenticated by the policy engine before access."] == "c1"


def test_without_removal_the_label_is_plain_bm25s_best() -> None:
    import numpy as np

    pairs = lexical_pairs(CHUNKS, {"c0", "c1", "c2", "c3"}, per_chunk=4, seed=0, remove=0.0)
    bm = BM25Counts([c.text for c in CHUNKS])
    assert len(pairs) == 5  # one per sentence of six words or more
    for p in pairs:
        assert p.chunk_id == CHUNKS[int(np.argmax(bm.scores(p.query)))].id
    # Mostly the sentence's own chunk; BM25's length normalisation may prefer a shorter one.
    own = sum(p.query in next(c.text for c in CHUNKS if c.id == p.chunk_id) for p in pairs)
    assert own >= len(pairs) - 2


def test_off_and_deterministic() -> None:
    assert lexical_pairs(CHUNKS, {"c0"}, per_chunk=0, seed=0) == []
    assert lexical_pairs(CHUNKS, {"c0", "c1"}, 4, seed=3) == lexical_pairs(CHUNKS, {"c0", "c1"}, 4, seed=3)
