"""Near-duplicate and round-trip question filters, on cases worked by hand."""

from __future__ import annotations

import numpy as np

from ragtune.generators.filters import drop_near_duplicates, drop_round_trip_failures
from ragtune.records import Chunk, Pair, SkipCounter

CHUNKS = [
    Chunk("zt", "d.pdf", (1,), "Zero trust architecture removes implicit trust from the network perimeter.", 12),
    Chunk("ir", "d.pdf", (2,), "Incident response teams triage alerts, contain breaches and restore service.", 12),
    Chunk("pw", "d.pdf", (3,), "Password policies require rotation and multi factor authentication for admins.", 12),
]


def test_round_trip_keeps_questions_whose_chunk_bm25_finds() -> None:
    pairs = [
        Pair("How does zero trust treat the network perimeter?", "zt", "g"),
        # Asked of the wrong chunk: BM25 ranks "pw" first and "ir" not at all in the top 1.
        Pair("Which password rotation and multi factor rules apply?", "ir", "g"),
        # No word in common with any chunk: its chunk cannot be in BM25's top 1.
        Pair("What about the weather?", "pw", "g"),
    ]
    dropped = SkipCounter()
    kept = drop_round_trip_failures(pairs, CHUNKS, 1, dropped)
    assert [p.query for p in kept] == ["How does zero trust treat the network perimeter?"]
    assert dropped.counts == {"round trip: own chunk not in BM25 top 1": 2}


def test_round_trip_never_keeps_a_chunk_sharing_no_term_with_the_question() -> None:
    # "and" is a stopword, so "ir" shares nothing with this question: even with k
    # covering every chunk, BM25 has not found it.
    pairs = [
        Pair("Which password rotation and multi factor rules apply?", "ir", "g"),
        Pair("Which password rotation and multi factor rules apply?", "pw", "g"),
    ]
    kept = drop_round_trip_failures(pairs, CHUNKS, 3, SkipCounter())
    assert [p.chunk_id for p in kept] == ["pw"]
    assert drop_round_trip_failures([], CHUNKS, 3, SkipCounter()) == []


def test_near_duplicates_only_count_within_one_chunk() -> None:
    v = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    pairs = [Pair("q1", "a", "g"), Pair("q1 again", "a", "g"), Pair("q1 for b", "b", "g"), Pair("other", "a", "g")]
    dropped = SkipCounter()
    kept = drop_near_duplicates(pairs, v, 0.95, dropped)
    # The copy for chunk a goes; the same text for chunk b and the 0.6-similar question stay.
    assert [p.query for p in kept] == ["q1", "q1 for b", "other"]
    assert dropped.counts == {"near-duplicate question": 1}
    assert len(drop_near_duplicates(pairs, v, 0.5, SkipCounter())) == 2
