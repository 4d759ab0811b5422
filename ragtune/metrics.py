"""Retrieval metrics: hit@k and MRR@10 for the dense retrievers, BM25 and the hybrid; the ship rule
(`is_improved`), hit@5 per theme and the shift of the top-1 score that the card and report show.

Base and fine-tuned models are scored on the same held-out questions against
the same chunks with the same index settings (inner product over normalised
embeddings, i.e. cosine similarity; with passages, a chunk scores its best passage
blended with its own vector).
"""

from __future__ import annotations

from typing import Any, Sequence

from .names import BASE, BASE_PASSAGES, FINE_TUNED, FINE_TUNED_PASSAGES
from .retrieval import HYBRID_WEIGHTS, dense_index, embed, fuse, positions_to_ids

MRR_AT = 10


def retriever_rows(metrics: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """(label, metrics) for every retriever a run measured, in reading order.

    >>> [label for label, _ in retriever_rows({"base": {}, "fine_tuned": {}, "bm25": {}})]
    ['base', 'fine-tuned', 'BM25']
    """
    weight = metrics.get("hybrid_weight")
    labels = [
        ("base", BASE),
        ("base, with passages", BASE_PASSAGES),
        ("fine-tuned", FINE_TUNED),
        ("fine-tuned, with passages", FINE_TUNED_PASSAGES),
        ("BM25", "bm25"),
        ("hybrid, fine-tuned + BM25" + (f" ({weight:.1f} : {1 - weight:.1f})" if weight is not None else ""), "hybrid"),
    ]
    return [(label, metrics[key]) for label, key in labels if key in metrics]


def metrics_text_table(metrics: dict[str, Any]) -> str:
    """A plain-text table of a run's metrics (or an evaluation_set entry): one row per retriever, one column
    per metric, as `ragtune run` prints it."""
    keys = [k for k in ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10") if k in metrics[FINE_TUNED]]
    rows = retriever_rows(metrics)
    width = max(len(label) for label, _ in rows) + 2
    out = [f"{'':<{width}}" + "".join(f"{k:>9}" for k in keys)]
    out += [f"{label:<{width}}" + "".join(f"{m[k]:>9.3f}" for k in keys) for label, m in rows]
    return "\n".join(out)


def cutoff_advice(before_median: float, after_median: float) -> str:
    """What moved scores mean for a RAG app, said only where it is true: a fixed cutoff on cosine scores of dense
    vectors in a vector store. Hybrid scores are rescaled within each query and BM25's grow with the query."""
    return (
        f"the best chunk's cosine moved (median {before_median:.2f} -> {after_median:.2f}): if your RAG app "
        "drops dense results below a fixed cosine cutoff in a vector store, re-tune that cutoff. "
        "Hybrid scores rank within one query only (the top hit is near 1) and BM25 scores grow with the "
        "query, so neither takes a fixed cutoff."
    )


def rank_metrics(
    ranked: Sequence[Sequence[str]], relevant: Sequence[set[str] | str], ks: Sequence[int]
) -> dict[str, float]:
    """hit@k and MRR@10 from ranked id lists and the relevant id(s) per query.

    >>> rank_metrics([["a", "b"], ["c", "b"]], ["b", "x"], ks=[1, 2])
    {'hit@1': 0.0, 'hit@2': 0.5, 'mrr@10': 0.25}
    """
    if not ranked:
        raise ValueError("no queries to evaluate")
    if len(ranked) != len(relevant):
        raise ValueError(f"{len(ranked)} rankings but {len(relevant)} relevance sets")
    hits = {k: 0 for k in ks}
    rr = 0.0
    for ids, rel in zip(ranked, relevant):
        rel_set = {rel} if isinstance(rel, str) else rel
        rank = next((i for i, cid in enumerate(ids) if cid in rel_set), None)
        if rank is None:
            continue
        for k in ks:
            hits[k] += rank < k
        if rank < MRR_AT:
            rr += 1.0 / (rank + 1)
    n = len(ranked)
    out = {f"hit@{k}": hits[k] / n for k in ks}
    out[f"mrr@{MRR_AT}"] = rr / n
    return out


def model_rankings(
    model: Any,
    chunk_texts: list[str],
    chunk_ids: list[str],
    queries: list[str],
    depth: int,
    passage_words: int = 0,
    chunk_weight: float = 0.5,
    dim: int | None = None,
    passage_stride: int = 1,
) -> list[list[str]]:
    """The top `depth` chunk ids per query from an exact index of `model`'s embeddings of
    the chunks (and with `passage_words`, of their passages)."""
    index = dense_index(model, chunk_texts, passage_words, chunk_weight, dim, passage_stride)
    _, positions = index.search(embed(model, queries, dim=dim), depth)
    return positions_to_ids(positions, chunk_ids)


def evaluate_model(
    model: Any,
    chunk_texts: list[str],
    chunk_ids: list[str],
    queries: list[str],
    relevant: list[str],
    ks: Sequence[int],
    dim: int | None = None,
    passage_words: int = 0,
) -> dict[str, float]:
    """Metrics of `model` on the queries; with `dim`, on embeddings cut to that many
    dimensions; with `passage_words`, over chunks and their passages."""
    depth = max(max(ks), MRR_AT)
    return rank_metrics(
        model_rankings(model, chunk_texts, chunk_ids, queries, depth, passage_words, dim=dim), relevant, ks
    )


def rrf(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]], k: int = 60) -> list[list[str]]:
    """Reciprocal-rank fusion of two rankings per query: score 1/(k + rank), summed.

    >>> rrf([["x", "y"]], [["y", "z"]])
    [['y', 'x', 'z']]
    """
    fused = []
    for ra, rb in zip(a, b):
        score: dict[str, float] = {}
        for ranking in (ra, rb):
            for i, cid in enumerate(ranking):
                score[cid] = score.get(cid, 0.0) + 1.0 / (k + i + 1)
        fused.append(sorted(score, key=lambda c: -score[c]))
    return fused


def similarity_shift(before: Any, after: Any) -> dict[str, Any]:
    """How the top-1 cosine of the held-out questions moved: a RAG app's fixed score cutoff breaks when it drops.

    `warn` is set when the median fell by more than 0.05; `cutoff_map` maps a few base-model cutoffs to the
    tuned-model score at the same quantile, a starting point for re-tuning one.

    >>> out = similarity_shift([0.5, 0.6, 0.7], [0.3, 0.4, 0.5])
    >>> out["base"]["median"], out["fine_tuned"]["median"], out["warn"]
    (0.6, 0.4, True)
    """
    import numpy as np

    b, a = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)

    def stats(x: Any) -> dict[str, float]:
        return {
            "median": round(float(np.median(x)), 4),
            "p10": round(float(np.quantile(x, 0.1)), 4),
            "p90": round(float(np.quantile(x, 0.9)), 4),
        }

    cutoffs = {}
    for cut in (0.3, 0.4, 0.5, 0.6):
        share_below = float(np.mean(b < cut))
        if 0.0 < share_below < 1.0:
            cutoffs[f"{cut:.1f}"] = round(float(np.quantile(a, share_below)), 3)
    return {
        BASE: stats(b),
        FINE_TUNED: stats(a),
        "cutoff_map": cutoffs,
        "warn": bool(np.median(a) < np.median(b) - 0.05),
    }


# The figures metrics.json holds are rounded to this many digits: more would only be noise of a few hundred questions.
DIGITS = 4


def rounded(value: Any, digits: int = DIGITS) -> Any:
    """`value` with every float in it (in dicts and lists, at any depth) rounded to `digits`.

    >>> rounded({"hit@5": 0.5609756097560976, "n": 41, "ks": [0.123456]})
    {'hit@5': 0.561, 'n': 41, 'ks': [0.1235]}
    """
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


# What metrics.json's per_theme measures, and names in each theme's entry.
PER_THEME_METRIC = "hit@5"


def theme_figures(row: dict[str, Any]) -> tuple[int, float, float]:
    """(questions, base, fine-tuned) of one theme of metrics.json's per_theme (as `names.upgrade_metrics` reads it),
    written either way: {"n", "hit@5": {"base", "fine_tuned"}} or, in a metrics.json from before the key named its
    metric, {"n", "base", "fine_tuned"}.

    >>> theme_figures({"n": 2, "hit@5": {"base": 0.5, "fine_tuned": 1.0}}), theme_figures({"n": 2, "base": 0.5, "fine_tuned": 1.0})
    ((2, 0.5, 1.0), (2, 0.5, 1.0))
    """
    figures = row.get(PER_THEME_METRIC, row)
    return row["n"], figures[BASE], figures[FINE_TUNED]


def per_theme_hits(
    ranked: dict[str, list[list[str]]], relevant: list[str], themes: dict[str, list[str]], k: int = 5
) -> dict[str, dict[str, Any]]:
    """hit@k of the base and fine-tuned models for the held-out questions of each theme's chunks (a chunk may have
    several), under the metric's name; `ranked` holds each model's rankings under its metrics.json key.

    >>> per_theme_hits({"base": [["a"], ["x"]], "fine_tuned": [["a"], ["b"]]}, ["a", "b"], {"a": ["t"], "b": ["t"]}, k=1)
    {'t': {'n': 2, 'hit@1': {'base': 0.5, 'fine_tuned': 1.0}}}
    """
    out: dict[str, dict[str, Any]] = {}
    for i, rel in enumerate(relevant):
        for theme in themes.get(rel) or ["(unthemed)"]:
            row = out.setdefault(theme, {"n": 0, BASE: 0, FINE_TUNED: 0})
            row["n"] += 1
            for key in (BASE, FINE_TUNED):
                row[key] += rel in ranked[key][i][:k]
    return {
        t: {"n": r["n"], f"hit@{k}": {w: round(r[w] / r["n"], DIGITS) for w in (BASE, FINE_TUNED)}}
        for t, r in sorted(out.items(), key=lambda kv: -kv[1]["n"])
    }


def is_improved(before: dict[str, float], after: dict[str, float]) -> bool:
    """The tuned model must not lose on hit@5 or MRR@10 and must gain on at least one.

    >>> is_improved({"hit@5": .5, "mrr@10": .4}, {"hit@5": .6, "mrr@10": .4})
    True
    >>> is_improved({"hit@5": .5, "mrr@10": .4}, {"hit@5": .6, "mrr@10": .39})
    False
    """
    keys = ("hit@5", "mrr@10")
    return all(after[k] >= before[k] for k in keys) and any(after[k] > before[k] for k in keys)


# What the validation questions may and may not decide. They come from the generator, which borrows its chunk's
# words, and on every set of outside questions measured BM25 alone ranked at most 0.007 hit@5 above the hybrid and up
# to 0.25 below it (docs/benchmarks.md, "Which retriever is served"). On the Debian manuals a 30-minute run's
# validation preferred BM25 alone by 0.073 of MRR@10 (p < 0.001); on 120 questions people wrote about them, BM25
# alone found 0.350 at hit@5 over the run's chunks, the model alone 0.567 and the hybrid 0.600. So with the evidence
# recorded, BM25 alone is never served on validation's word (an app can still ask for it), and the model alone
# replaces the hybrid only when its lead is beyond chance: the one-sided paired bootstrap chance that its MRR@10
# gain is not real must be at most SERVE_P.
SERVE_P = 0.05


def reciprocal_ranks(ranked: Sequence[Sequence[str]], relevant: Sequence[str]) -> list[float]:
    """Each question's reciprocal rank within the top MRR_AT (0.0 when its chunk is not there).

    >>> reciprocal_ranks([["a", "b"], ["c"]], ["b", "x"])
    [0.5, 0.0]
    """
    return [
        next((1 / (i + 1) for i, cid in enumerate(ids[:MRR_AT]) if cid == rel), 0.0)
        for ids, rel in zip(ranked, relevant)
    ]


def chance_of_no_gain(gains: Sequence[float], draws: int = 2000, seed: int = 0) -> float:
    """The share of bootstrap resamples of per-question gains whose mean is not above 0: near 0 when the gain
    is real, about 0.5 when there is none. Seeded, so a run's choice can be checked again.

    >>> chance_of_no_gain([0.5] * 30)
    0.0
    >>> 0.3 < chance_of_no_gain([1.0, -1.0] * 20) < 0.7
    True
    """
    import numpy as np

    g = np.asarray(gains, dtype=float)
    if not len(g):
        return 1.0
    means = g[np.random.default_rng(seed).integers(0, len(g), (draws, len(g)))].mean(axis=1)
    return round(float(np.mean(means <= 0)), 4)


def share_scores(
    dense_hits: Any, lexical_hits: Any, ids: Sequence[str], relevant: Sequence[str], fixed: float | None = None
) -> tuple[dict[float, dict[str, float]], dict[float, list[float]]]:
    """hit@5 and MRR@10 at each dense share of the hybrid (HYBRID_WEIGHTS, and `fixed`), from 0.0 (BM25 alone)
    to 1.0 (the model alone), rounded as metrics.json records them so that a choice can be checked from that file,
    and each question's reciprocal rank at each share. `dense_hits` and `lexical_hits` are the two retrievers'
    (scores, positions) for the questions."""
    scores, ranks = {}, {}
    for w in sorted({*HYBRID_WEIGHTS, *([fixed] if fixed is not None else [])}):
        ranked = positions_to_ids(fuse(dense_hits, lexical_hits, w, MRR_AT), ids)
        scores[w] = {k: round(v, 4) for k, v in rank_metrics(ranked, relevant, (5,)).items()}
        ranks[w] = reciprocal_ranks(ranked, relevant)
    return scores, ranks


def served_evidence(ranks: dict[float, Sequence[float]], weight: float) -> dict[str, dict[str, float]]:
    """How BM25 alone (share 0.0) and the model alone (1.0) did against the hybrid at `weight` on the
    validation questions: the mean gain in MRR@10 and the chance that it is not real.

    >>> served_evidence({0.0: [1, 1, 0.5], 0.6: [1, 0.5, 0.5], 1.0: [0, 0.5, 0.5]}, 0.6)["bm25"]
    {'mrr@10': 0.1667, 'p': 0.2855}
    """
    out = {}
    for mode, w in (("bm25", 0.0), ("dense", 1.0)):
        if w in ranks and weight in ranks:
            gains = [a - b for a, b in zip(ranks[w], ranks[weight])]
            out[mode] = {"mrr@10": round(sum(gains) / len(gains), 4), "p": chance_of_no_gain(gains)}
    return out


def hybrid_share(scores: dict[float, dict[str, float]], fixed: float | None = None) -> float:
    """The hybrid's dense share: `fixed`, or the inner share (strictly between BM25 alone and the model alone)
    with the best validation MRR@10, then hit@5; a tie goes to the larger share.

    >>> hybrid_share({0.0: {"mrr@10": .9, "hit@5": .9}, 0.4: {"mrr@10": .6, "hit@5": .8}, 0.6: {"mrr@10": .6, "hit@5": .8}})
    0.6
    """
    if fixed is not None:
        return fixed
    return max((w for w in scores if 0.0 < w < 1.0), key=lambda w: (scores[w]["mrr@10"], scores[w]["hit@5"], w))


def choose_served(
    scores: dict[float, dict[str, float]],
    fixed: float | None = None,
    evidence: dict[str, dict[str, float]] | None = None,
) -> tuple[str, float]:
    """The retriever to serve and the hybrid's dense share, from validation scores per
    share (0.0 is BM25 alone, 1.0 the model alone): best MRR@10, then hit@5; a tie goes
    to the larger dense share. With `fixed`, the hybrid competes at that share only.
    With `evidence` (`served_evidence`), as runs choose: BM25 alone is not a candidate,
    and the model alone replaces the hybrid only when its lead is beyond chance (p at
    most SERVE_P). Without it, every lead counts, as ragtune 0.3 chose.

    >>> s = {0.0: {"mrr@10": .5, "hit@5": .7}, 0.4: {"mrr@10": .6, "hit@5": .8}, 1.0: {"mrr@10": .55, "hit@5": .8}}
    >>> choose_served(s)
    ('hybrid', 0.4)
    >>> choose_served({**s, 0.0: {"mrr@10": .7, "hit@5": .8}})
    ('bm25', 0.4)
    >>> choose_served({**s, 0.0: {"mrr@10": .7, "hit@5": .8}}, evidence={"bm25": {"mrr@10": .1, "p": 0.0}})
    ('hybrid', 0.4)
    >>> choose_served({**s, 1.0: {"mrr@10": .6, "hit@5": .8}})
    ('dense', 0.4)
    >>> choose_served({**s, 1.0: {"mrr@10": .6, "hit@5": .8}}, evidence={"dense": {"mrr@10": 0, "p": .4}})
    ('hybrid', 0.4)
    """
    key = lambda w: (scores[w]["mrr@10"], scores[w]["hit@5"], w)  # noqa: E731
    weight = hybrid_share(scores, fixed)
    modes = {0.0: "bm25", 1.0: "dense"}
    if evidence is None:
        rivals = [w for w in scores if w in modes]
    else:
        rivals = [w for w in scores if w == 1.0 and evidence.get("dense", {}).get("p", 1.0) <= SERVE_P]
    best = max(rivals + ([weight] if weight in scores else []), key=key)
    return modes.get(best, "hybrid"), weight
