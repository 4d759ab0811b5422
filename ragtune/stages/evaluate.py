"""Evaluate stage: base and tuned model, BM25 and the hybrid on the held-out questions -> metrics.json, index/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..fileio import write_json
from ..metrics import (
    MRR_AT,
    choose_served,
    evaluate_model,
    hybrid_share,
    is_improved,
    per_theme_hits,
    rank_metrics,
    rounded,
    served_evidence,
    share_scores,
    similarity_shift,
)
from ..models import encoding_in, pick_device, resolve_base_model, resolve_precision
from ..names import BASE, FINE_TUNED, FINE_TUNED_PASSAGES
from ..progress import Parts
from ..records import FORMAT_VERSION, Chunk, LabelledPair, Pair, read_jsonl
from ..retrieval import (
    BM25Index,
    DenseIndex,
    base_vectors_about,
    embed,
    fuse,
    positions_to_ids,
    retrieval_units,
    save_base_vectors,
    write_settings,
)
from ..runfiles import metrics_problem
from ..similarity import evaluate_pairs
from .base import Run, Stage, StageResult


@dataclass
class EvaluateResult(StageResult):
    # The figures themselves are in metrics.json (the user's to add to, e.g. with --evaluation-set).
    summary: str


# The hybrid's dense share under `--hybrid-weight auto` when the run has no validation questions
# to choose it: third-party questions did best at 0.5-0.8 on two sets (docs/benchmarks.md).
DEFAULT_HYBRID_WEIGHT = 0.6


def run_stage(run: Run, general: dict[str, Any] | None = None) -> EvaluateResult:
    device = pick_device(run.cfg.device)
    # Encoded in the precision training ran in: bf16 on a CPU that has it is about 1.8x as fast, and the
    # figures are those of fp32 to within a question (README, bf16 on a CPU). --precision fp32 encodes in fp32.
    precision = resolve_precision(run.cfg.precision, device)
    with encoding_in(precision, device):
        return _evaluate(run, precision, general)


def _evaluate(run: Run, precision: str, general: dict[str, Any] | None) -> EvaluateResult:
    cfg = run.cfg
    chunks = read_jsonl(run.files.chunks, Chunk)
    held = read_jsonl(run.files.split("test"), Pair)
    texts, ids = [c.text for c in chunks], [c.id for c in chunks]
    queries, relevant = [p.query for p in held], [p.chunk_id for p in held]
    ks = cfg.ks
    depth = max(max(ks), MRR_AT)
    # Fusion looks deeper than the metrics so that both lists can contribute.
    pool = 10 * depth
    units = retrieval_units(texts, cfg.passage_words, cfg.passage_stride)
    n = len(chunks)
    metrics: dict[str, Any] = {}
    dense: dict[str, DenseIndex] = {}
    parts = Parts(run.progress_for("evaluate"), 2 * (len(units.texts) + len(queries)))
    top1: dict[str, Any] = {}
    query_vectors: dict[str, Any] = {}
    ranked: dict[str, list[list[str]]] = {}
    for which, key in (("base", BASE), ("tuned", FINE_TUNED)):
        model = run.model(which)
        # The chunk vectors are the first rows of the units: one encoding serves both retrievers.
        vectors = embed(model, units.texts, progress=parts.part())
        one = DenseIndex.from_vectors(vectors[:n], units.owner[:n])
        q = query_vectors[which] = embed(model, queries, progress=parts.part())
        top, positions = one.search(q, depth)
        metrics[key] = rank_metrics(positions_to_ids(positions, ids), relevant, ks)
        # What a RAG app's score cutoff sees: the cosine of each question's best chunk.
        top1[key] = top[:, 0]
        if cfg.passage_words:
            dense[which] = DenseIndex.from_vectors(vectors, units.owner, cfg.chunk_weight)
            ranked[key] = positions_to_ids(dense[which].search(q, depth)[1], ids)
            metrics[f"{key}_passages"] = rank_metrics(ranked[key], relevant, ks)
        else:
            dense[which] = one
            ranked[key] = positions_to_ids(positions, ids)
    bm25 = BM25Index.build(texts)
    metrics["bm25"] = rank_metrics(positions_to_ids(bm25.search(queries, depth)[1], ids), relevant, ks)
    # The served retriever (and, with --hybrid-weight auto, the hybrid's weight) is chosen on the validation
    # questions, which no retriever filtered (the split stage's round trip is for training questions only);
    # the held-out ones only measure.
    tuned = run.model("tuned")
    weight_scores, ranks = _hybrid_weight_scores(run, tuned, dense["tuned"], bm25, ids, pool, cfg.hybrid_weight)
    evidence: dict[str, dict[str, float]] = {}
    if weight_scores:
        weight = hybrid_share(weight_scores, cfg.hybrid_weight)
        evidence = served_evidence(ranks, weight)
        mode = choose_served(weight_scores, cfg.hybrid_weight, evidence)[0]
    else:
        mode, weight = "", DEFAULT_HYBRID_WEIGHT if cfg.hybrid_weight is None else cfg.hybrid_weight
    fused = fuse(dense["tuned"].search(query_vectors["tuned"], pool), bm25.search(queries, pool), weight, depth)
    metrics["hybrid"] = rank_metrics(positions_to_ids(fused, ids), relevant, ks)
    _record_figures(run, metrics, weight, weight_scores, precision, top1, ranked, chunks, relevant)
    _save_index(run, dense, bm25, texts)
    _choose_served(run, metrics, mode, weight, tuned, evidence)
    if cfg.matryoshka_dims:
        metrics["dims"] = _dims_figures(run, texts, ids, queries, relevant)
    summary = _summary_line(run, metrics, tuned)
    if general:
        # The forgetting guard's figures, measured by the train stage (ragtune.training.forgetting).
        metrics["general"] = general
    write_json(run.files.metrics, rounded(metrics))
    return EvaluateResult(summary)


def _record_figures(
    run: Run,
    metrics: dict[str, Any],
    weight: float,
    weight_scores: dict[float, dict[str, float]],
    precision: str,
    top1: dict[str, Any],
    ranked: dict[str, list[list[str]]],
    chunks: list[Chunk],
    relevant: list[str],
) -> None:
    """Adds to `metrics` how the hybrid was weighed, what was encoded how, and the shifts it measured."""
    cfg = run.cfg
    metrics |= {
        "hybrid_weight": weight,
        "hybrid_weight_validation": {str(w): m for w, m in weight_scores.items()},
        "passage_words": cfg.passage_words,
        "passage_stride": cfg.passage_stride,
        "encoding_precision": precision,
        "improved": is_improved(metrics[BASE], metrics[FINE_TUNED]),
        "n_queries": len(relevant),
        "n_chunks": len(chunks),
        "test_set": "held-out synthetic questions (by chunk)",
        "similarity": similarity_shift(top1[BASE], top1[FINE_TUNED]),
        "per_theme": per_theme_hits(ranked, relevant, {c.id: c.themes for c in chunks}),
    }


def _dims_figures(
    run: Run, texts: list[str], ids: list[str], queries: list[str], relevant: list[str]
) -> dict[str, Any]:
    """Both models' figures at each --matryoshka-dims size, largest first."""
    return {
        str(d): {
            which: evaluate_model(run.model(model), texts, ids, queries, relevant, run.cfg.ks, dim=d)
            for which, model in ((BASE, "base"), (FINE_TUNED, "tuned"))
        }
        for d in sorted(run.cfg.matryoshka_dims, reverse=True)
    }


def _save_index(run: Run, dense: dict[str, Any], bm25: Any, texts: list[str]) -> None:
    """index/: the tuned model's vectors and BM25, and the base model's vectors for `search --compare`."""
    cfg = run.cfg
    # A RAG app serves the tuned model's index: every unit row, and BM25 beside it for the hybrid.
    dense["tuned"].save(run.files.index)
    bm25.save(run.files.index / "bm25")
    save_base_vectors(
        run.run_dir,
        dense["base"],
        base_vectors_about(
            resolve_base_model(cfg.base_model), run.model("base"), texts, cfg.passage_words, cfg.passage_stride
        ),
    )


def _choose_served(
    run: Run, metrics: dict[str, Any], mode: str, weight: float, tuned: Any, evidence: dict[str, Any]
) -> None:
    """The retriever the index serves (chosen on the validation questions, else on the held-out ones),
    recorded in `metrics` (with `evidence`: how BM25 alone and the model alone did against the hybrid on
    validation) and in index/'s settings."""
    cfg = run.cfg
    dense_key = FINE_TUNED_PASSAGES if cfg.passage_words else FINE_TUNED
    chosen_on = "validation questions"
    if not mode:
        # No validation set: the hybrid when it beats the model alone on the held-out questions, as before.
        mode = "hybrid" if is_improved(metrics[dense_key], metrics["hybrid"]) else "dense"
        chosen_on = "held-out questions (no validation set)"
    metrics["recommended_mode"] = mode
    metrics["served"] = {
        "mode": mode,
        "chosen_on": chosen_on,
        **metrics[{"dense": dense_key, "hybrid": "hybrid", "bm25": "bm25"}[mode]],
    }
    if evidence:
        metrics["served"]["against_hybrid"] = evidence
    write_settings(
        run.files.index,
        {
            "format": FORMAT_VERSION,
            "passage_words": cfg.passage_words,
            "passage_stride": cfg.passage_stride,
            "chunk_weight": cfg.chunk_weight,
            "hybrid_weight": weight,
            "mode": mode,
            # The length the models encode chunks with: `search --compare` sets the
            # base model to it, so it builds (and finds) the same base vectors.
            "max_seq_length": int(tuned.max_seq_length),
        },
    )


def _summary_line(run: Run, metrics: dict[str, Any], tuned: Any) -> str:
    """The stage's summary line; with --pairs, the labelled pairs' figures are measured and added to `metrics`."""
    cfg = run.cfg
    summary = f"hit@5 {metrics[BASE]['hit@5']:.3f} -> {metrics[FINE_TUNED]['hit@5']:.3f}"
    if cfg.passage_words:
        summary += f" ({metrics[FINE_TUNED_PASSAGES]['hit@5']:.3f} with passages)"
    summary += f", BM25 {metrics['bm25']['hit@5']:.3f}, hybrid {metrics['hybrid']['hit@5']:.3f}"
    if run.files.labelled("test").exists():
        held_pairs = read_jsonl(run.files.labelled("test"), LabelledPair)
        pb, pa = evaluate_pairs(run.model("base"), held_pairs), evaluate_pairs(tuned, held_pairs)
        metrics["pairs"] = {BASE: pb, FINE_TUNED: pa, "n_pairs": len(held_pairs)}
        # A mixed run must not trade one skill for the other.
        metrics["improved"] = metrics["improved"] and pa["spearman"] > pb["spearman"]
        summary += f"; labelled Spearman {pb['spearman']:.3f} -> {pa['spearman']:.3f}"
    return summary


def _hybrid_weight_scores(
    run: Run, model: Any, dense: Any, bm25: Any, ids: list[str], pool: int, fixed: float | None = None
) -> tuple[dict[float, dict[str, float]], dict[float, list[float]]]:
    """hit@5 and MRR@10 of the validation questions over all chunks at each dense share of
    the hybrid score, from 0.0 (BM25 alone) to 1.0 (the model alone), and each question's
    reciprocal rank at each share; ({}, {}) without them."""
    val = read_jsonl(run.files.split("val"), Pair)
    if not val:
        return {}, {}
    queries = [p.query for p in val]
    d, b = dense.search(embed(model, queries), pool), bm25.search(queries, pool)
    return share_scores(d, b, ids, [p.chunk_id for p in val], fixed)


# bm25/ is a folder: its digest covers every file in it. `--evaluation-set` adds to metrics.json after a
# run: it only has to hold the evaluation's figures.
STAGE = Stage(
    "evaluate",
    ("ks", "passage_words", "passage_stride", "chunk_weight", "hybrid_weight"),
    lambda files: [
        files.index / "index.faiss",
        files.index / "rows.npy",
        files.index / "retriever.json",
        files.index / "bm25",
    ],
    lambda run, records: run_stage(run, records["train"].general if "train" in records else None),
    edited=lambda files: [files.metrics],
    problem=lambda files: metrics_problem(files.metrics),
    result=EvaluateResult,
)
