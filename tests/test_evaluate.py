"""Retrieval metrics against answers worked out by hand, with a keyword encoder and real FAISS."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ragtune.metrics import MRR_AT, evaluate_model, rank_metrics
from ragtune.retrieval import bm25_rankings


class KeywordEncoder:
    """Turns each text into keyword counts, one dimension per keyword (like sentence-transformers' IR tests).

    "cats and dogs" -> [1, 1, 0, 0, 0]; so similarities, and therefore rankings, are known by hand.
    """

    def __init__(self, keywords: list[str]) -> None:
        self.keywords = keywords
        self.calls: list[dict] = []

    def encode(self, texts: list[str], **kw: object) -> np.ndarray:
        self.calls.append(kw)
        vecs = np.zeros((len(texts), len(self.keywords)), dtype=np.float64)
        for i, t in enumerate(texts):
            tokens = re.findall(r"[a-z]+", t.lower())
            for j, k in enumerate(self.keywords):
                vecs[i, j] = sum(tok.rstrip("s") == k for tok in tokens)
        if kw.get("normalize_embeddings"):
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            vecs = vecs / np.where(norms == 0, 1, norms)
        return vecs


KEYWORDS = ["cat", "dog", "fish", "bird", "horse"]
DOCS = {
    "d-cat": "All about the cat: feeding a cat and grooming it.",
    "d-dog": "Walking the dog every morning.",
    "d-fish": "Keeping a fish tank clean.",
    "d-bird": "Bird song at dawn.",
    "d-horse": "Riding a horse in the hills.",
}
IDS, TEXTS = list(DOCS), list(DOCS.values())


# --- rank_metrics, worked by hand -----------------------------------------------------


def test_all_first() -> None:
    assert rank_metrics([["a", "b"], ["b", "a"]], ["a", "b"], ks=[1, 2]) == {"hit@1": 1.0, "hit@2": 1.0, "mrr@10": 1.0}


def test_mixed_ranks() -> None:
    ranked = [["a", "b", "c", "d"], ["b", "c", "a", "d"], ["d", "c", "b", "a"], ["a", "b", "c", "d"]]
    relevant = ["a", "a", "a", "x"]  # ranks 1, 3, 4 and not found
    m = rank_metrics(ranked, relevant, ks=[1, 3, 5])
    assert m["hit@1"] == 1 / 4
    assert m["hit@3"] == 2 / 4
    assert m["hit@5"] == 3 / 4
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 4 + 0) / 4)
    assert list(m) == ["hit@1", "hit@3", "hit@5", "mrr@10"]


def test_mrr_is_cut_at_10() -> None:
    ranking = [f"d{i}" for i in range(1, 21)]
    # Relevant at rank 10 counts 1/10; at rank 11 it is a hit@20 but adds nothing to MRR@10.
    m = rank_metrics([ranking, ranking], ["d10", "d11"], ks=[10, 20])
    assert MRR_AT == 10
    assert m == {"hit@10": 0.5, "hit@20": 1.0, "mrr@10": pytest.approx(0.1 / 2)}


def test_sets_of_relevant_ids_count_the_first_one_found() -> None:
    ranked = [["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"]]
    relevant = [{"c", "b"}, {"a", "c"}, {"x", "y"}]  # first relevant at ranks 2, 1, none
    m = rank_metrics(ranked, relevant, ks=[1, 2])
    assert m == {"hit@1": pytest.approx(1 / 3), "hit@2": pytest.approx(2 / 3), "mrr@10": pytest.approx((0.5 + 1) / 3)}


def test_a_relevant_id_listed_twice_counts_once() -> None:
    m = rank_metrics([["b", "a", "a"]], ["a"], ks=[1, 3])
    assert m == {"hit@1": 0.0, "hit@3": 1.0, "mrr@10": 0.5}


def test_no_queries_is_an_error() -> None:
    with pytest.raises(ValueError, match="no queries"):
        rank_metrics([], [], ks=[1])


# --- dense retrieval through evaluate_model -------------------------------------------


def test_keyword_encoder_retrieves_perfectly() -> None:
    queries = ["Where is my cat?", "Which dog barks?", "A fish question", "Is that a bird?", "horse riding lessons"]
    relevant = ["d-cat", "d-dog", "d-fish", "d-bird", "d-horse"]
    model = KeywordEncoder(KEYWORDS)
    m = evaluate_model(model, TEXTS, IDS, queries, relevant, ks=[1, 3])
    assert m == {"hit@1": 1.0, "hit@3": 1.0, "mrr@10": 1.0}
    # Chunks and queries are both embedded normalised: inner product is cosine similarity.
    assert len(model.calls) == 2 and all(c.get("normalize_embeddings") is True for c in model.calls)


def test_keyword_encoder_half_right() -> None:
    # The second query is about dogs (and a little about cats) but its answer is the cat document:
    # it ranks d-dog first (2/sqrt(5)) and d-cat second (1/sqrt(5)).
    queries = ["cat care", "dog dog cat"]
    relevant = ["d-cat", "d-cat"]
    m = evaluate_model(KeywordEncoder(KEYWORDS), TEXTS, IDS, queries, relevant, ks=[1, 2, 5])
    assert m == {"hit@1": 0.5, "hit@2": 1.0, "hit@5": 1.0, "mrr@10": 0.75}


def test_set_of_relevant_chunks_through_evaluate_model() -> None:
    m = evaluate_model(KeywordEncoder(KEYWORDS), TEXTS, IDS, ["bird bird horse"], [{"d-horse", "d-fish"}], ks=[1, 2])
    assert m == {"hit@1": 0.0, "hit@2": 1.0, "mrr@10": 0.5}


def test_saved_dense_index_reads_back_with_its_rows(tmp_path: Path) -> None:
    import faiss

    from ragtune.retrieval import DenseIndex, dense_index

    model = KeywordEncoder(KEYWORDS)
    index_dir = tmp_path / "run" / "index"
    dense_index(model, TEXTS, min_words=0).save(index_dir)
    assert sorted(p.name for p in index_dir.iterdir()) == ["index.faiss", "rows.npy"]
    index = faiss.read_index(str(index_dir / "index.faiss"))
    assert index.ntotal == len(TEXTS)
    assert index.d == len(KEYWORDS)
    assert index.metric_type == faiss.METRIC_INNER_PRODUCT
    # The stored vectors are the normalised chunk embeddings, in chunk order.
    stored = index.reconstruct_n(0, index.ntotal)
    np.testing.assert_allclose(stored, model.encode(TEXTS, normalize_embeddings=True), rtol=1e-6)
    # The cat document's vector: "cat" twice, nothing else.
    np.testing.assert_allclose(stored[0], [1, 0, 0, 0, 0])
    assert DenseIndex.load(index_dir).owner.tolist() == list(range(len(TEXTS)))


def test_evaluate_model_without_index_dir_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    evaluate_model(KeywordEncoder(KEYWORDS), TEXTS, IDS, ["cat"], ["d-cat"], ks=[1])
    assert list(tmp_path.iterdir()) == []


def test_more_ks_than_chunks() -> None:
    # Asking for hit@10 over 5 chunks must not fail; every relevant chunk is within 10.
    m = evaluate_model(KeywordEncoder(KEYWORDS), TEXTS, IDS, ["dog dog cat"], ["d-cat"], ks=[1, 10])
    assert m == {"hit@1": 0.0, "hit@10": 1.0, "mrr@10": 0.5}


def test_tiny_sentence_transformer_runs_through_faiss(tiny_model) -> None:
    # A real (random-weight) model: metrics are in range and hit@k grows with k.
    texts = [
        f"Section {i} discusses {w} in detail."
        for i, w in enumerate(
            ["privacy", "security", "fairness", "safety", "governance", "evaluation", "incidents", "provenance"]
        )
    ]
    ids = [f"c{i}" for i in range(len(texts))]
    m = evaluate_model(tiny_model, texts, ids, ["What about privacy?", "And safety?"], ["c0", "c3"], ks=[1, 3, 8])
    assert 0 <= m["hit@1"] <= m["hit@3"] <= m["hit@8"] == 1.0
    assert m["hit@1"] <= m["mrr@10"] <= 1.0


# --- BM25 -----------------------------------------------------------------------------

BM25_DOCS = [
    "Zero trust architecture removes implicit trust from the enterprise network perimeter.",
    "Confabulation: generative models produce confident but false statements.",
    "Model provenance records where training data and weights came from.",
    "Red teaming exercises probe a system for harmful outputs before deployment.",
    "Energy use and carbon emissions of training large models are environmental impacts.",
]
BM25_IDS = ["zt", "conf", "prov", "red", "env"]


def test_bm25_ranks_the_matching_document_first() -> None:
    queries = [
        "what is zero trust architecture",
        "why do models produce confident false statements",
        "where did the training data and weights come from",
        "red teaming for harmful outputs",
        "carbon emissions of training",
    ]
    rankings = bm25_rankings(BM25_DOCS, BM25_IDS, queries, depth=10)
    assert [r[0] for r in rankings] == BM25_IDS
    # Only documents sharing a term with the query are retrieved at all.
    assert all(1 <= len(r) <= len(BM25_IDS) and len(set(r)) == len(r) for r in rankings)
    m = rank_metrics(bm25_rankings(BM25_DOCS, BM25_IDS, queries, depth=MRR_AT), BM25_IDS, ks=[1, 3])
    assert m == {"hit@1": 1.0, "hit@3": 1.0, "mrr@10": 1.0}


def test_bm25_depth_limits_the_ranking() -> None:
    rankings = bm25_rankings(BM25_DOCS, BM25_IDS, ["zero trust", "confabulation"], depth=2)
    assert [len(r) for r in rankings] == [1, 1]
    assert rankings == [["zt"], ["conf"]]
    # A query matching nothing retrieves nothing, rather than a list in arbitrary order.
    assert bm25_rankings(BM25_DOCS, BM25_IDS, ["quantum gastronomy"], depth=5) == [[]]


def test_bm25_with_a_misleading_query() -> None:
    # The query's words belong to the red-teaming document, but the labelled answer is provenance.
    queries = ["zero trust network", "red teaming harmful outputs"]
    m = rank_metrics(bm25_rankings(BM25_DOCS, BM25_IDS, queries, depth=MRR_AT), ["zt", "prov"], ks=[1])
    assert m["hit@1"] == 0.5
    # The labelled answer shares no word with the query, so BM25 never retrieves it.
    assert m["mrr@10"] == 0.5


# --- which retriever is served --------------------------------------------------------


def _validation(rival_ranks: list[float], hybrid_ranks: list[float], rival: float = 0.0) -> tuple[dict, dict]:
    """Validation scores per dense share, and their evidence, from each question's reciprocal rank: `rival` (0.0,
    BM25 alone, or 1.0, the model alone) ranks by `rival_ranks`, the hybrid at 0.6 by `hybrid_ranks`, the other
    alone finds nothing."""
    from ragtune.metrics import served_evidence

    ranks = {rival: rival_ranks, 0.6: hybrid_ranks, 1.0 - rival: [0.0] * len(hybrid_ranks)}
    scores = {w: {"mrr@10": sum(r) / len(r), "hit@5": sum(x >= 0.2 for x in r) / len(r)} for w, r in ranks.items()}
    return scores, served_evidence(ranks, 0.6)


def _leads(wins: int) -> tuple[list[float], list[float]]:
    """A rival that ranks the chunk first where the hybrid ranks it second on `wins` questions of 60, and second
    where the hybrid ranks it first on 10: a lead in MRR@10 either way."""
    ties = 60 - wins - 10
    return [1.0] * wins + [0.5] * 10 + [1.0] * ties, [0.5] * wins + [1.0] * 10 + [1.0] * ties


def test_the_model_alone_replaces_the_hybrid_only_when_its_validation_lead_is_beyond_chance() -> None:
    from ragtune.metrics import SERVE_P, choose_served

    for wins, served in ((12, "hybrid"), (48, "dense")):
        scores, evidence = _validation(*_leads(wins), rival=1.0)
        assert scores[1.0]["mrr@10"] > scores[0.6]["mrr@10"]
        assert (evidence["dense"]["p"] <= SERVE_P) is (served == "dense")
        assert choose_served(scores, 0.6, evidence) == (served, 0.6)
        # Without the evidence, any lead wins, as ragtune 0.3 chose.
        assert choose_served(scores, 0.6) == ("dense", 0.6)


def test_bm25_alone_is_not_served_on_the_word_of_generated_questions_however_large_its_lead() -> None:
    from ragtune.metrics import SERVE_P, choose_served

    scores, evidence = _validation(*_leads(48))
    assert evidence["bm25"]["p"] <= SERVE_P
    assert choose_served(scores, 0.6, evidence) == ("hybrid", 0.6)
    assert choose_served(scores, 0.6) == ("bm25", 0.6)
    # A user who sets the model's share to 0 asked for BM25 alone, and gets it.
    assert choose_served(scores, 0.0, evidence)[0] == "bm25"


def test_the_card_says_why_bm25_alone_scored_higher_and_is_not_served() -> None:
    from ragtune.card import recommendation

    scores, evidence = _validation(*_leads(48))
    row = {"hit@5": 0.5, "mrr@10": 0.4}
    metrics = {
        "fine_tuned": row,
        "hybrid": row,
        "bm25": row,
        "hybrid_weight": 0.6,
        "served": {"mode": "hybrid", "chosen_on": "validation questions", "against_hybrid": evidence, **row},
    }
    (line,) = recommendation(metrics)
    gain = scores[0.0]["mrr@10"] - scores[0.6]["mrr@10"]
    assert f"BM25 alone scored higher there (MRR@10 +{gain:.3f} over the hybrid, p " in line
    assert "so it is not served by itself" in line
    # The model alone trailed the hybrid: nothing to say of it.
    assert "The fine-tuned model alone scored higher" not in line
