"""Config + metrics -> the model card (model/README.md) and the run report (report.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import __version__
from .card_widget import card_widget, excerpt, guess_language, widget_reads_clean  # noqa: F401 (card names since 0.2)
from .metrics import is_improved as beats
from .metrics import retriever_rows
from .models import BUNDLED_HUB_ID, base_model_id, base_model_label, bundled_model_path  # noqa: F401 (card names since 0.2)
from .names import BASE, FINE_TUNED, FINE_TUNED_PASSAGES, upgrade_counts
from .report import facts_line, markdown_sections, served_label
from .training.forgetting import guard_line

METRIC_KEYS = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10")


def _served_line(served: dict[str, Any], weight: float | None, after: dict[str, float]) -> str:
    """The one line that says what `ragtune.Retriever` serves for this run, and why."""
    figures = f"held-out hit@5 {served['hit@5']:.3f}, MRR@10 {served['mrr@10']:.3f}"
    if served["mode"] == "bm25":
        return (
            "Served: BM25 alone, as this run chose on its validation questions; ragtune.Retriever and "
            f"`ragtune search` use BM25 for this run ({figures}; the fine-tuned model alone: hit@5 "
            f"{after['hit@5']:.3f}, MRR@10 {after['mrr@10']:.3f})."
        )
    if served["mode"] == "hybrid":
        line = (
            f"Served: the hybrid of the fine-tuned model and BM25 ({weight:.1f} : {1 - weight:.1f}), chosen on "
            f"the validation questions; ragtune.Retriever and `ragtune search` use it by default ({figures})."
        )
        lead = _lead(served, "bm25")
        if lead:
            line += (
                f" BM25 alone scored higher there{lead}: generated questions reuse their chunk's words, which BM25 "
                "rewards. On questions people wrote it has ranked below the hybrid on every set measured, so it is "
                'not served by itself (`mode="bm25"` still gives it).'
            )
        lead = _lead(served, "dense")
        if lead:
            line += f" The fine-tuned model alone scored higher there{lead}: within chance, so the hybrid stays."
        return line
    return (
        "Served: the fine-tuned model alone, which did best on the validation questions"
        f"{_lead(served, 'dense')}; ragtune.Retriever and `ragtune search` use it by default ({figures})."
    )


def _lead(served: dict[str, Any], mode: str) -> str:
    """ " (MRR@10 +0.015 over the hybrid, p 0.23)" when `mode` led the hybrid on validation; "" otherwise, or for a
    run that recorded no such figures (ragtune 0.3). p is the chance that the lead is not real.

    >>> _lead({"against_hybrid": {"bm25": {"mrr@10": 0.0147, "p": 0.23}}}, "bm25")
    ' (MRR@10 +0.015 over the hybrid, p 0.23)'
    >>> _lead({"against_hybrid": {"bm25": {"mrr@10": 0.0731, "p": 0.0}}}, "bm25")
    ' (MRR@10 +0.073 over the hybrid, p < 0.01)'
    """
    gain = (served.get("against_hybrid") or {}).get(mode)
    if not gain or gain["mrr@10"] <= 0:
        return ""
    p = f"p {gain['p']:.2f}" if gain["p"] >= 0.01 else "p < 0.01"
    return f" (MRR@10 +{gain['mrr@10']:.3f} over the hybrid, {p})"


def metrics_table(metrics: dict[str, Any]) -> str:
    """A markdown table: one row per retriever, one column per metric."""
    keys = [k for k in METRIC_KEYS if k in metrics.get(FINE_TUNED, {})]
    lines = ["| retriever | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for label, m in retriever_rows(metrics):
        lines.append(f"| {label} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |")
    return "\n".join(lines)


def recommendation(metrics: dict[str, Any]) -> list[str]:
    """What to retrieve with, going by the held-out figures (hit@5 and MRR@10 both count).

    >>> recommendation({"fine_tuned": {"hit@5": .7, "mrr@10": .5}, "hybrid": {"hit@5": .8, "mrr@10": .6}})[0][:40]
    'Recommendation: use hybrid retrieval (fi'
    """
    # The dense retriever a RAG app gets from index/: with passages when the run built them.
    after = metrics.get(FINE_TUNED_PASSAGES, metrics[FINE_TUNED])
    served = metrics.get("served")
    if served and served.get("chosen_on") == "validation questions":
        return [_served_line(served, metrics.get("hybrid_weight"), after)]
    lines = []
    if "hybrid" in metrics and beats(after, metrics["hybrid"]):
        lines.append(
            "Recommendation: use hybrid retrieval (fine-tuned model + BM25, weighted score sum); it beats "
            f"the fine-tuned model alone here (hit@5 {metrics['hybrid']['hit@5']:.3f} vs {after['hit@5']:.3f}, "
            f"MRR@10 {metrics['hybrid']['mrr@10']:.3f} vs {after['mrr@10']:.3f}). index/ holds both indexes: "
            '`ragtune search RUN QUERY --mode hybrid`, or `ragtune.Retriever` with mode="hybrid".'
        )
    if "bm25" in metrics and beats(after, metrics["bm25"]):
        lines.append(
            "BM25 alone beats the fine-tuned model on these held-out questions. They are written from the "
            "chunks' own words, which is what BM25 rewards; questions in other words favour the model less "
            "(ragtune's docs/benchmarks.md has figures on questions written outside ragtune)."
        )
    return lines


def _dims_section(metrics: dict[str, Any]) -> str:
    """Held-out figures per truncated size, for a Matryoshka-trained model."""
    if "dims" not in metrics:
        return ""
    rows = "\n".join(
        f"| {d} | {m[BASE]['hit@5']:.3f} | {m[FINE_TUNED]['hit@5']:.3f} | {m[BASE]['mrr@10']:.3f} "
        f"| {m[FINE_TUNED]['mrr@10']:.3f} |"
        for d, m in metrics["dims"].items()
    )
    return (
        "\nTrained with Matryoshka loss: embeddings may be cut to their first N dimensions "
        "(`SentenceTransformer(path, truncate_dim=N)`).\n\n"
        "| dimensions | hit@5 base | hit@5 fine-tuned | MRR@10 base | MRR@10 fine-tuned |\n"
        f"|---:|---:|---:|---:|---:|\n{rows}\n"
    )


def _selection_section(summary: dict[str, Any]) -> str:
    """How the shipped weights were chosen on validation questions."""
    v = (summary.get("train") or {}).get("validation") or {}
    if v.get("base_score") is None:
        return ""
    best = v["best_score"] if v.get("best_score") is not None else v["base_score"]
    tried = ", ".join(
        f"{float(a):.0%}: {score:.3f}" for a, score in sorted(v["mix_scores"].items(), key=lambda kv: float(kv[0]))
    )
    return (
        f"\n## Model selection\n\n{v['n_questions']} validation questions, from chunks kept out of both "
        "training and the held-out test, scored every checkpoint (mean over question kinds of MRR@10). "
        f"Base {v['base_score']:.3f}; best checkpoint {best:.3f} at step {v['best_step']}. "
        f"The shipped weights keep {v['mix']:.0%} of the change from the base (WiSE-FT; tried {tried})"
        + (
            f", at most {v['mix_cap']:.0%} (`--wise-share`): validation questions come from the generator that wrote "
            "the training questions and favour all of the change, while questions people write often gain more "
            "from a part of it"
            if v.get("mix_cap", 1.0) < 1
            else ""
        )
        + ".\n"
    )


def _pairs_section(metrics: dict[str, Any]) -> str:
    if "pairs" not in metrics:
        return ""
    lp = metrics["pairs"]
    rows = "\n".join(
        f"| {label} | {lp[key]['pearson']:.3f} | {lp[key]['spearman']:.3f} |"
        for label, key in (("base", BASE), ("fine-tuned", FINE_TUNED))
    )
    return (
        f"\nAlso trained on labelled pairs (CosineSimilarityLoss family, round-robin with the questions); "
        f"cosine similarity against the labels of {lp['n_pairs']} held-out pairs:\n\n"
        f"| model | Pearson | Spearman |\n|---|---:|---:|\n{rows}\n"
    )


# Standard sentence-transformers names for the information-retrieval metrics (as its
# InformationRetrievalEvaluator writes them), so the Hub reads them like any other model's.
HUB_METRIC_NAMES = {
    "hit@1": "cosine_accuracy@1",
    "hit@3": "cosine_accuracy@3",
    "hit@5": "cosine_accuracy@5",
    "hit@10": "cosine_accuracy@10",
    "mrr@10": "cosine_mrr@10",
}
KIND_NAMES = {".pdf": "PDF", ".txt": "text", ".md": "Markdown"}


def base_license(base_model: str) -> str | None:
    """The base model's license, read from its card's front matter when it is a local folder (the bundled one is)."""
    from huggingface_hub import ModelCard

    path = Path(base_model) if base_model else None
    if path is None or not path.exists():
        try:
            path = bundled_model_path() if not base_model or base_model_id(base_model) == BUNDLED_HUB_ID else None
        except Exception:  # the bundled package is absent
            path = None
    readme = path / "README.md" if path is not None else None
    if readme is None or not readme.is_file():
        return None
    try:
        return ModelCard.load(readme).data.license
    except Exception:  # a card that does not parse has no license we can cite
        return None


def model_details(model_dir: Path) -> dict[str, Any]:
    """Output dimensions, similarity and pooling of a saved sentence-transformers folder, read from its JSON files
    (nothing is loaded). A value the files do not give is left out.

    >>> model_details(bundled_model_path())["dimensions"]
    384
    """
    import json

    def read(rel: str) -> Any:
        try:
            return json.loads((model_dir / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    details: dict[str, Any] = {}
    st = read("config_sentence_transformers.json") or {}
    details["similarity"] = st.get("similarity_fn_name") or "cosine"
    for module in read("modules.json") or []:
        config = read(f"{module.get('path', '')}/config.json".lstrip("/")) or {}
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        # sentence-transformers 6 writes embedding_dimension and pooling_mode; older ones
        # word_embedding_dimension and a pooling_mode_* flag per mode.
        dimension = config.get("embedding_dimension", config.get("word_embedding_dimension"))
        if kind == "Pooling" and dimension:
            details["dimensions"] = dimension
            modes = [k[len("pooling_mode_") :] for k, v in config.items() if k.startswith("pooling_mode_") and v]
            details["pooling"] = config.get("pooling_mode") or ", ".join(modes)
        elif kind == "Dense" and "out_features" in config:
            details["dimensions"] = config["out_features"]
    return details


def _documents(files: list[str], n_pages: int) -> str:
    """ "3 files (2 PDF, 1 Markdown), 65 pages": the card never names the user's files."""
    kinds: dict[str, int] = {}
    for f in files:
        kind = KIND_NAMES.get(Path(f).suffix.lower(), "other")
        kinds[kind] = kinds.get(kind, 0) + 1
    what = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    return f"{len(files)} file{'s' if len(files) != 1 else ''} ({what}), {n_pages} pages"


def card_data(summary: dict[str, Any], metrics: dict[str, Any], name: str, dataset_id: str | None = None) -> Any:
    """The card's front matter as huggingface_hub's ModelCardData (what the Hub and `ModelCard.load` read)."""
    from huggingface_hub import EvalResult, ModelCardData

    cfg = summary["config"]
    results = [
        EvalResult(
            task_type="information-retrieval",
            task_name="Information Retrieval",
            dataset_type="ragtune-synthetic-heldout",
            dataset_name="held-out synthetic questions",
            metric_type=HUB_METRIC_NAMES[k],
            metric_name=HUB_METRIC_NAMES[k],
            metric_value=round(metrics[FINE_TUNED][k], 4),
        )
        for k in METRIC_KEYS
        if k in metrics[FINE_TUNED]
    ]
    return ModelCardData(
        base_model=base_model_id(cfg["base_model"]),
        datasets=[dataset_id] if dataset_id else None,
        language=summary.get("language") or None,
        library_name="sentence-transformers",
        license=summary.get("license") or base_license(cfg["base_model"]),
        metrics=[HUB_METRIC_NAMES[k] for k in METRIC_KEYS if k in metrics[FINE_TUNED]],
        model_name=name,
        pipeline_tag="sentence-similarity",
        tags=["sentence-transformers", "sentence-similarity", "feature-extraction", "ragtune", "retrieval"],
        eval_results=results,
        # A run saved before the widget was checked (its card.json) may hold garbled or cut-off text: left out.
        widget=[summary["widget"]] if widget_reads_clean(summary.get("widget")) else None,
    )


def _similarity_section(metrics: dict[str, Any]) -> str:
    """A warning when the tuned model's scores sit lower than the base's: a fixed score cutoff would drop hits."""
    sim = metrics.get("similarity")
    if not sim or not sim.get("warn"):
        return ""
    b, a = sim[BASE], sim[FINE_TUNED]
    moved = ", ".join(f"{cut} -> about {new:.2f}" for cut, new in sim["cutoff_map"].items())
    return (
        f"\n## Similarity scores moved\n\n**If your RAG app drops dense results below a fixed cosine "
        f"score in a vector store, re-tune that cutoff.** The cosine of each held-out question's best chunk has a median of "
        f"{a['median']:.2f} with this model, against {b['median']:.2f} with the base model (10th percentile "
        f"{a['p10']:.2f} vs {b['p10']:.2f}). The ranking is what improved; the scale is not the same."
        + (f" A cutoff that kept the same share of questions: {moved}." if moved else "")
        + " Hybrid scores (ragtune's `--mode hybrid`) rank within one query only, the top hit near 1, and BM25 "
        "scores grow with the query: neither takes a fixed cutoff.\n"
    )


def load_path(summary: dict[str, Any], repo_id: str | None) -> str:
    """What the card tells a user to load: the Hub id once pushed, else the run's model folder as the user named it."""
    if repo_id:
        return repo_id
    out = summary["config"].get("out_as_given") or summary["config"]["out"]
    return f"{out}/model" if not Path(out).is_absolute() else f"{Path(out).name}/model"


TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
# Packages whose versions the card records (as sentence-transformers' own cards do).
VERSIONED = ("ragtune", "sentence-transformers", "transformers", "torch", "huggingface-hub", "tokenizers")


def framework_versions() -> dict[str, str]:
    """The versions of Python and the packages that trained the model, for the card.

    >>> sorted(framework_versions())[:2]
    ['huggingface-hub', 'python']
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # ragtune run from a source tree without being installed
            found[name] = __version__ if name == "ragtune" else "not installed"
    return found


def card_advice(metrics: dict[str, Any]) -> str:
    """What the held-out figures say about retrieving with this model, naming nothing a Hub reader lacks."""
    after = metrics.get(FINE_TUNED_PASSAGES, metrics[FINE_TUNED])
    lines = []
    if "hybrid" in metrics and beats(after, metrics["hybrid"]):
        weight = metrics.get("hybrid_weight")
        share = f", the model's share {weight:.1f}" if weight is not None else ""
        lines.append(
            "Combined with BM25 (a weighted sum of the two scores, each scaled to [0, 1] per query"
            f"{share}), this model did better than alone: hit@5 {metrics['hybrid']['hit@5']:.3f} against "
            f"{after['hit@5']:.3f}, MRR@10 {metrics['hybrid']['mrr@10']:.3f} against {after['mrr@10']:.3f}."
        )
    if (metrics.get("served") or {}).get("mode") == "hybrid":
        weight = metrics.get("hybrid_weight")
        lines.append(
            "To run this hybrid in your vector store, store BM25's side beside this model's vectors: in Qdrant a "
            "sparse vector of each text's word counts with the IDF modifier, in LanceDB a full-text index on the "
            "text. Query both, and fuse the two rankings with this model's share "
            f"{0.5 if weight is None else weight:.1f} (Qdrant's weighted RRF, LanceDB's hybrid query). The stores "
            "fuse their own way, so the top results agree with the figures above mostly, not exactly."
        )
    if "bm25" in metrics and beats(after, metrics["bm25"]):
        lines.append(
            "BM25 alone beat this model on these questions. They borrow the documents' own words, which is "
            "what BM25 rewards; questions in other words favour the model more."
        )
    return "".join(f"\n{line}\n" for line in lines)


def _settings_table(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    rows = [
        (
            "loss",
            "MultipleNegativesRankingLoss over rows of one chunk and "
            f"{cfg.get('queries_per_row', cfg['questions_per_chunk'])} of its questions (no-duplicates batches)",
        ),
        (
            "questions",
            f"{cfg['questions_per_chunk']} per chunk from the `{cfg['generator']}` generator, and "
            f"{cfg.get('lexical_per_chunk', 0)} BM25-labelled spans per training chunk (lexical distillation)",
        ),
        (
            "hard negatives",
            "one per chunk, mined with the base model"
            if cfg.get("hard_negatives")
            else "none (in-batch negatives only)",
        ),
        ("epochs", cfg["epochs"]),
        ("batch size", f"{cfg['batch_size']} chunks"),
        ("learning rate", cfg["learning_rate"]),
        ("warmup ratio", cfg["warmup_ratio"]),
        ("weight decay", cfg["weight_decay"]),
        ("steps", summary["train"]["steps"]),
        ("seed", cfg["seed"]),
    ]
    return "| setting | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def render_card(
    summary: dict[str, Any], metrics: dict[str, Any], repo_id: str | None = None, dataset_id: str | None = None
) -> str:
    """The model card, rendered from templates/model_card.md. `summary` holds config, data counts and training
    facts from the run; `repo_id` is the Hub repo it is pushed to (the push renders the card again with it).
    The card names nothing that is not uploaded with the model: no run folder, index or local command.
    `metrics` has this version's names: whoever loads a file upgrades it once (names.upgrade_metrics)."""
    from huggingface_hub import ModelCard

    summary = upgrade_counts(summary)

    cfg = summary["config"]
    name = repo_id or f"ragtune-{cfg['out']}"
    language = summary.get("language")
    card = ModelCard.from_template(
        card_data(summary, metrics, name, dataset_id),
        template_path=str(TEMPLATE),
        name=name,
        path=load_path(summary, repo_id),
        base_label=base_model_label(cfg["base_model"]),
        dimensions=summary.get("dimensions") or "see the model's config",
        similarity=summary.get("similarity") or "cosine",
        max_seq_length=summary["max_seq_length"],
        language={"en": "English"}.get(language or "", language or "not determined"),
        language_note=" in English" if language == "en" else "",
        # Old runs' card.json has no versions: name ragtune's, the one thing known.
        versions=summary.get("versions") or {"ragtune": cfg.get("version") or "unknown"},
        verdict=(
            "The fine-tuned model beats the base model."
            if metrics.get("improved")
            else "**The fine-tuned model did not beat the base model on these questions.**"
        ),
        metrics_table=metrics_table(metrics),
        advice=card_advice(metrics),
        extra_sections=(
            _similarity_section(metrics)
            + _dims_section(metrics)
            + _pairs_section(metrics)
            + _selection_section(summary)
        ),
        n_queries=metrics["n_queries"],
        n_test_chunks=summary["n_test_chunks"],
        n_chunks=summary["n_chunks"],
        documents=_documents(summary["files"], summary["n_pages"]),
        chunk_tokens=cfg["chunk_tokens"],
        chunk_overlap=cfg["chunk_overlap"],
        long_inputs=_long_inputs_note(summary),
        themes=summary["themes"],
        n_pairs=summary["n_pairs"],
        generator=cfg["generator"],
        n_train=summary["n_train"],
        n_test=summary["n_test"],
        settings_table=_settings_table(summary),
    )
    return str(card)


def _long_inputs_note(summary: dict[str, Any]) -> str:
    """The Chunks line's note on long inputs: what share of the rows trained on windows, and how long."""
    share = summary["config"].get("long_inputs") or 0
    if not share or not summary.get("long_windows"):
        return ""
    return (
        f"; {share:.0%} of the training rows paired a chunk's questions with a long window (the chunk and its "
        f"neighbours, up to {summary['max_seq_length']} tokens), so the model also learned the lengths apps chunk at"
    )


def render_report(summary: dict[str, Any], metrics: dict[str, Any], extras: dict[str, Any] | None = None) -> str:
    """A short human-readable report of the run: what was read, dropped, trained and measured. `extras` (from
    report.report_extras) adds the run facts, sample questions and the sample search. `metrics` has this
    version's names (see render_card)."""
    table = metrics_table(metrics)
    served = served_label(metrics)
    if served:
        # The row the app gets, marked where a reader looks first.
        table = table.replace(f"| {served} |", f"| {served} (served) |", 1)
    lines = ["# ragtune run report", *facts_line(extras), "", "## Retrieval on held-out questions", "", table, ""]
    lines.append(
        "Verdict: the fine-tuned model is better than the base."
        if metrics.get("improved")
        else "Verdict: NOT IMPROVED - the fine-tuned model is not better than the base; `ragtune push` refuses it without --force."
    )
    if "general" in metrics:
        lines += ["", guard_line(metrics["general"])]
    lines += recommendation(metrics)
    lines += markdown_sections(summary, metrics, extras)
    return "\n".join(lines).rstrip("\n") + "\n"
