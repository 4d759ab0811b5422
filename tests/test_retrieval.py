"""Passages, the blended chunk score, BM25 and the weighted hybrid, worked by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragtune.retrieval import BM25Index, DenseIndex, dense_index, fuse, passages_of, retrieval_units
from tests.test_evaluate import KeywordEncoder

KEYWORDS = ["cat", "dog", "fish", "bird", "horse"]


def test_passages_without_overlap_are_whole_sentences_of_enough_words() -> None:
    text = "One small cat. Two big dogs run. Three fish. Four birds sing loud songs. Five."
    assert passages_of(text, min_words=5, stride=0) == [
        "One small cat. Two big dogs run.",
        "Three fish. Four birds sing loud songs. Five.",
    ]
    # Every word of the chunk is in exactly one passage, in order.
    assert " ".join(passages_of(text, 5, stride=0)).split() == text.split()
    # A chunk that would make a single passage is its own unit; 0 turns passages off.
    for stride in (0, 1, 2):
        assert passages_of("One small cat. Two big dogs.", min_words=20, stride=stride) == []
        assert passages_of(text, min_words=0, stride=stride) == []


def test_overlapping_passages_start_at_every_stride_th_sentence_and_cover_every_sentence() -> None:
    text = "One small cat. Two big dogs run. Three fish. Four birds sing loud songs. Five."
    # A window from each sentence until it has 5 words; "Five." alone is too short, so the last window
    # reaches back from the end until it has enough.
    assert passages_of(text, min_words=5) == [
        "One small cat. Two big dogs run.",
        "Two big dogs run. Three fish.",
        "Three fish. Four birds sing loud songs.",
        "Four birds sing loud songs.",
        "Four birds sing loud songs. Five.",
    ]
    # Once a window reaches the end, no later one is made.
    assert passages_of("Aa bb cc dd. Ee ff gg hh. Ii.", min_words=4) == [
        "Aa bb cc dd.",
        "Ee ff gg hh.",
        "Ee ff gg hh. Ii.",
    ]
    # Stride 2 starts at every other sentence, but never past the sentence after the last window.
    many = " ".join(f"S{i} a b." for i in range(8))  # eight sentences of 3 words
    assert passages_of(many, min_words=5, stride=2) == [
        "S0 a b. S1 a b.",
        "S2 a b. S3 a b.",
        "S4 a b. S5 a b.",
        "S6 a b. S7 a b.",
    ]
    assert passages_of(many, min_words=7, stride=2) == [
        "S0 a b. S1 a b. S2 a b.",
        "S2 a b. S3 a b. S4 a b.",
        "S4 a b. S5 a b. S6 a b.",
        "S5 a b. S6 a b. S7 a b.",
    ]
    for stride in (1, 2, 3):
        for min_words in (3, 5, 7, 9):
            windows = passages_of(many, min_words, stride)
            assert all(len(w.split()) >= min_words for w in windows)
            assert {f"S{i}" for i in range(8)} <= {w for p in windows for w in p.split()}


def test_units_put_chunks_first_then_their_passages() -> None:
    units = retrieval_units(["Cats eat. Dogs run. Fish swim.", "Birds."], min_words=2, stride=0)
    assert units.texts == ["Cats eat. Dogs run. Fish swim.", "Birds.", "Cats eat.", "Dogs run.", "Fish swim."]
    assert units.owner.tolist() == [0, 1, 0, 0, 0] and units.n_chunks == 2


def test_a_chunk_blends_its_best_passage_with_its_own_vector() -> None:
    # Chunk 0 is mostly about cats, with one sentence on a horse; chunk 1 is about a horse and dogs.
    chunks = ["A cat. The cat sleeps. Cat food. A horse.", "A horse and a dog. The dog runs with the horse."]
    model = KeywordEncoder(KEYWORDS)
    q = model.encode(["horse"], normalize_embeddings=True).astype(np.float32)
    one_scores, one = dense_index(model, chunks, min_words=0).search(q, 2)
    # One vector each: chunk 0 is [3, 0, 0, 0, 1] -> 1/sqrt(10); chunk 1 is [0, 2, 0, 0, 2] -> 1/sqrt(2).
    assert one.tolist() == [[1, 0]]
    np.testing.assert_allclose(one_scores[0], [1 / np.sqrt(2), 1 / np.sqrt(10)], rtol=1e-5)
    # With one-sentence passages chunk 0's "A horse." scores 1; blended at weight 1 it scores
    # (1 + 1/sqrt(10)) / 2 = 0.658 and chunk 1 (best passage 1/sqrt(2)) scores 1/sqrt(2) = 0.707.
    s1, c1 = dense_index(model, chunks, min_words=1, chunk_weight=1.0).search(q, 2)
    assert c1.tolist() == [[1, 0]]
    np.testing.assert_allclose(s1[0], [1 / np.sqrt(2), (1 + 1 / np.sqrt(10)) / 2], rtol=1e-5)
    # At weight 0 the best passage alone decides, and chunk 0's exact match wins.
    s0, c0 = dense_index(model, chunks, min_words=1, chunk_weight=0.0).search(q, 2)
    assert c0.tolist() == [[0, 1]] and s0[0, 0] == pytest.approx(1.0)


def test_search_widens_until_no_chunk_left_out_can_rank_higher() -> None:
    # Chunk 0 owns the 20 best rows; chunks 1 and 2 come only after all of them.
    rows = np.zeros((23, 2), dtype=np.float32)
    rows[0] = [1, 0]
    rows[1] = [0.6, 0.8]
    rows[2] = [0.5, 0.866]
    rows[3:] = [1, 0]  # passages of chunk 0
    owner = np.array([0, 1, 2] + [0] * 20)
    scores, chunks = DenseIndex.from_vectors(rows, owner, chunk_weight=0.5).search(np.array([[1, 0]], np.float32), 3)
    assert chunks.tolist() == [[0, 1, 2]]
    np.testing.assert_allclose(scores[0], [1.0, 0.6, 0.5], rtol=1e-5)
    # Asking for more chunks than exist is cut to the chunk count.
    assert DenseIndex.from_vectors(rows, owner).search(np.array([[1, 0]], np.float32), 10)[1].shape == (1, 3)


def test_search_agrees_with_brute_force_on_random_vectors() -> None:
    rng = np.random.default_rng(0)
    n_chunks, n_passages = 40, 160
    vecs = rng.normal(size=(n_chunks + n_passages, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    owner = np.concatenate([np.arange(n_chunks), rng.integers(0, n_chunks, n_passages)])
    queries = rng.normal(size=(25, 8)).astype(np.float32)
    w = 0.5
    scores, chunks = DenseIndex.from_vectors(vecs, owner, w).search(queries, 10)
    all_scores = queries @ vecs.T
    for qi in range(len(queries)):
        expected = []
        for c in range(n_chunks):
            passages = all_scores[qi, n_chunks:][owner[n_chunks:] == c]
            own = all_scores[qi, c]
            expected.append((passages.max() + w * own) / (1 + w) if len(passages) else own)
        best = np.argsort(-np.asarray(expected))[:10]
        assert chunks[qi].tolist() == best.tolist()
        np.testing.assert_allclose(scores[qi], np.asarray(expected)[best], rtol=1e-4)


def test_dense_index_round_trip(tmp_path: Path) -> None:
    index = dense_index(KeywordEncoder(KEYWORDS), ["Cats. Dogs. Fish.", "Birds."], min_words=1)
    index.save(tmp_path / "index")
    back = DenseIndex.load(tmp_path / "index")
    assert back.owner.tolist() == [0, 1, 0, 0, 0] and back.index.ntotal == 5
    q = np.array([[0, 0, 0, 1, 0]], np.float32)
    assert back.search(q, 2)[1].tolist() == index.search(q, 2)[1].tolist() == [[1, 0]]


def _clustered(n_chunks: int, n_passages: int, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around 8 centres (chunks first, then passages) and each row's chunk."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, dim))
    vecs = centres[rng.integers(0, 8, n_chunks + n_passages)] + 0.5 * rng.normal(size=(n_chunks + n_passages, dim))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    return vecs, np.concatenate([np.arange(n_chunks), rng.integers(0, n_chunks, n_passages)])


def test_an_index_above_the_threshold_is_hnsw_and_below_it_exact() -> None:
    vecs, owner = _clustered(150, 0)
    assert type(DenseIndex.from_vectors(vecs, owner, approx_rows=150).index).__name__ == "IndexFlatIP"
    assert type(DenseIndex.from_vectors(vecs, owner, approx_rows=149).index).__name__ == "IndexHNSWFlat"
    assert type(DenseIndex.from_vectors(vecs, owner, approx_rows=None).index).__name__ == "IndexFlatIP"
    # The default threshold keeps small indexes exact, as before.
    assert type(DenseIndex.from_vectors(vecs, owner).index).__name__ == "IndexFlatIP"


def test_hnsw_index_round_trips_and_finds_known_rows(tmp_path: Path) -> None:
    vecs, owner = _clustered(2000, 0)
    index = DenseIndex.from_vectors(vecs, owner, approx_rows=100)
    index.save(tmp_path / "index")
    back = DenseIndex.load(tmp_path / "index")
    assert type(back.index).__name__ == "IndexHNSWFlat" and back.index.hnsw.efSearch == index.index.hnsw.efSearch
    assert back.owner.tolist() == owner.tolist()
    # Noisy copies of known rows come back as their row, before and after the round trip.
    rng = np.random.default_rng(1)
    targets = rng.choice(2000, 50, replace=False)
    queries = vecs[targets] + 0.02 * rng.normal(size=(50, vecs.shape[1])).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    scores, chunks = back.search(queries, 10)
    assert chunks[:, 0].tolist() == targets.tolist()
    assert chunks.tolist() == index.search(queries, 10)[1].tolist()
    np.testing.assert_allclose(scores, index.search(queries, 10)[0], rtol=1e-6)


def test_hnsw_index_with_passages_rescores_exactly() -> None:
    # Rescoring reads rows back with reconstruct_batch, which an HNSW index supports.
    vecs, owner = _clustered(300, 600)
    queries = _clustered(20, 0, seed=2)[0]
    scores, chunks = DenseIndex.from_vectors(vecs, owner, 0.5, approx_rows=100).search(queries, 5)
    exact_s, exact_c = DenseIndex.from_vectors(vecs, owner, 0.5, approx_rows=None).search(queries, 5)
    # HNSW is approximate: nearly all of the exact top 5, and every score the exact blend.
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(chunks.tolist(), exact_c.tolist())]) >= 0.95
    all_scores = queries @ vecs.T
    for qi, row in enumerate(chunks.tolist()):
        for c, s in zip(row, scores[qi]):
            passages = all_scores[qi, 300:][owner[300:] == c]
            own = all_scores[qi, c]
            expected = (passages.max() + 0.5 * own) / 1.5 if len(passages) else own
            assert s == pytest.approx(float(expected), rel=1e-5)


def test_bm25_finds_only_chunks_sharing_a_term(tmp_path: Path) -> None:
    texts = ["zero trust architecture", "incident response plan", "trust but verify incident"]
    bm25 = BM25Index.build(texts)
    scores, chunks = bm25.search(["incident plan", "quantum"], 3)
    assert chunks[0].tolist()[:2] == [1, 2] and chunks[0][2] == -1
    assert (chunks[1] == -1).all() and (scores[1] == 0).all()
    bm25.save(tmp_path / "bm25")
    again = BM25Index.load(tmp_path / "bm25").search(["incident plan"], 3)
    assert again[1].tolist() == chunks[:1].tolist()
    np.testing.assert_allclose(again[0], scores[:1])


def test_fusion_weights_scale_each_list_to_one() -> None:
    dense = (np.array([[0.9, 0.8, 0.2]]), np.array([[0, 1, 2]]))
    lexical = (np.array([[10.0, 1.0, 0.0]]), np.array([[2, 1, -1]]))
    # Dense scaled: 1, 6/7, 0; BM25 scaled: chunk 2 -> 1, chunk 1 -> 0.
    assert fuse(dense, lexical, 1.0, 3) == [[0, 1, 2]]
    assert fuse(dense, lexical, 0.0, 1) == [[2]]
    # At 0.5: chunk 0 = 0.5, chunk 1 = 0.5 * 6/7, chunk 2 = 0.5 * 1: chunks 0 and 2 tie above chunk 1.
    assert fuse(dense, lexical, 0.5, 3)[0][2] == 1
