"""Config + metrics -> the model card (model/README.md) and the run report (report.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .models import bundled_model_path

BUNDLED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
METRIC_KEYS = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10")


def base_model_id(base_model: str) -> str | None:
    """The Hub id to cite as base_model, or None for a local folder (never a local path)."""
    if not base_model:
        return BUNDLED_HUB_ID
    path = Path(base_model)
    if path.exists():
        try:
            if path.resolve() == bundled_model_path().resolve():
                return BUNDLED_HUB_ID
        except Exception:  # the bundled package may be absent when a local base is used
            pass
        return None
    return base_model


def base_model_label(base_model: str) -> str:
    hub_id = base_model_id(base_model)
    return hub_id if hub_id else f"a local model ({Path(base_model).name})"


def retriever_rows(metrics: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """(label, metrics) for every retriever a run measured, in reading order.

    >>> [label for label, _ in retriever_rows({"before": {}, "after": {}, "bm25": {}})]
    ['base', 'fine-tuned', 'BM25']
    """
    weight = metrics.get("hybrid_weight")
    labels = [("base", "before"), ("base, with passages", "before_passages"), ("fine-tuned", "after"),
              ("fine-tuned, with passages", "after_passages"), ("BM25", "bm25"),
              ("hybrid, fine-tuned + BM25" + (f" ({weight:.1f} : {1 - weight:.1f})" if weight is not None else ""),
               "hybrid")]
    return [(label, metrics[key]) for label, key in labels if key in metrics]


def metrics_table(metrics: dict[str, Any]) -> str:
    """A markdown table: one row per retriever, one column per metric."""
    keys = [k for k in METRIC_KEYS if k in metrics.get("after", {})]
    lines = ["| retriever | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for label, m in retriever_rows(metrics):
        lines.append(f"| {label} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |")
    return "\n".join(lines)


def recommendation(metrics: dict[str, Any]) -> list[str]:
    """What to retrieve with, going by the held-out figures (hit@5 and MRR@10 both count).

    >>> recommendation({"after": {"hit@5": .7, "mrr@10": .5}, "hybrid": {"hit@5": .8, "mrr@10": .6}})[0][:40]
    'Recommendation: use hybrid retrieval (fi'
    """
    from .pipeline import is_improved as beats

    # The dense retriever a RAG app gets from index/: with passages when the run built them.
    after = metrics.get("after_passages", metrics["after"])
    lines = []
    if "hybrid" in metrics and beats(after, metrics["hybrid"]):
        lines.append("Recommendation: use hybrid retrieval (fine-tuned model + BM25, weighted score sum); it beats "
                     f"the fine-tuned model alone here (hit@5 {metrics['hybrid']['hit@5']:.3f} vs {after['hit@5']:.3f}, "
                     f"MRR@10 {metrics['hybrid']['mrr@10']:.3f} vs {after['mrr@10']:.3f}). index/ holds both indexes: "
                     "`ragtune search RUN QUERY --mode hybrid`, or `ragtune.Retriever` with mode=\"hybrid\".")
    if "bm25" in metrics and beats(after, metrics["bm25"]):
        lines.append("BM25 alone beats the fine-tuned model on these held-out questions. They are written from the "
                     "chunks' own words, which is what BM25 rewards; questions in other words favour the model less "
                     "(see the README's third-party figures).")
    return lines


def _dims_section(metrics: dict[str, Any]) -> str:
    """Held-out figures per truncated size, for a Matryoshka-trained model."""
    if "dims" not in metrics:
        return ""
    rows = "\n".join(f"| {d} | {m['before']['hit@5']:.3f} | {m['after']['hit@5']:.3f} | {m['before']['mrr@10']:.3f} "
                     f"| {m['after']['mrr@10']:.3f} |" for d, m in metrics["dims"].items())
    return ("\nTrained with Matryoshka loss: embeddings may be cut to their first N dimensions "
            "(`SentenceTransformer(path, truncate_dim=N)`).\n\n"
            "| dimensions | hit@5 base | hit@5 fine-tuned | MRR@10 base | MRR@10 fine-tuned |\n"
            f"|---:|---:|---:|---:|---:|\n{rows}\n")


def _selection_section(summary: dict[str, Any]) -> str:
    """How the shipped weights were chosen on validation questions."""
    v = (summary.get("train") or {}).get("validation") or {}
    if v.get("base_score") is None:
        return ""
    best = v["best_score"] if v.get("best_score") is not None else v["base_score"]
    tried = ", ".join(f"{float(a):.0%}: {score:.3f}" for a, score in sorted(v["mix_scores"].items(),
                                                                         key=lambda kv: float(kv[0])))
    return (f"\n## Model selection\n\n{v['n_questions']} validation questions, from chunks kept out of both "
            "training and the held-out test, scored every checkpoint (mean over question kinds of MRR@10). "
            f"Base {v['base_score']:.3f}; best checkpoint {best:.3f} at step {v['best_step']}. "
            f"The shipped weights keep {v['mix']:.0%} of the change from the base (WiSE-FT; tried {tried}).\n")


def _pairs_section(metrics: dict[str, Any]) -> str:
    if "pairs" not in metrics:
        return ""
    lp = metrics["pairs"]
    rows = "\n".join(f"| {label} | {lp[key]['pearson']:.3f} | {lp[key]['spearman']:.3f} |"
                     for label, key in (("base", "before"), ("fine-tuned", "after")))
    return (f"\nAlso trained on labelled pairs (CosineSimilarityLoss family, round-robin with the questions); "
            f"cosine similarity against the labels of {lp['n_pairs']} held-out pairs:\n\n"
            f"| model | Pearson | Spearman |\n|---|---:|---:|\n{rows}\n")


def _yaml_list(items: list[str], indent: int = 0) -> str:
    pad = " " * indent
    return "\n".join(f"{pad}- {item}" for item in items)


def render_card(summary: dict[str, Any], metrics: dict[str, Any], repo_id: str | None = None) -> str:
    """The model card. `summary` holds config, data counts and training facts from the run."""
    cfg = summary["config"]
    hub_base = base_model_id(cfg["base_model"])
    name = repo_id or "ragtune-model"
    front = ["---"]
    if hub_base:
        front.append(f"base_model: {hub_base}")
    front += [
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags:",
        _yaml_list(["sentence-transformers", "sentence-similarity", "feature-extraction", "ragtune", "retrieval"], 2),
        "model-index:",
        f"- name: {name}",
        "  results:",
        "  - task:",
        "      type: information-retrieval",
        "      name: Information Retrieval",
        "    dataset:",
        "      type: ragtune-synthetic-heldout",
        "      name: held-out synthetic questions",
        "    metrics:",
    ]
    for k in METRIC_KEYS:
        if k in metrics["after"]:
            front += [f"    - type: {k.replace('@', '_at_')}", f"      value: {metrics['after'][k]:.4f}", f"      name: {k}"]
    front.append("---")
    docs = ", ".join(summary["files"]) or "(none)"
    load_path = repo_id or "path/to/run/model"
    body = f"""
# {name}

A sentence-transformers embedding model fine-tuned by [ragtune](https://pypi.org/project/ragtune/) from
{base_model_label(cfg["base_model"])} for retrieval over a specific document collection.

## Training data

- Documents: {docs} ({summary["n_pages"]} pages)
- Chunks: {summary["n_chunks"]} (up to {cfg["chunk_tokens"]} tokens, overlap {cfg["chunk_overlap"]})
- Themes: {summary["themes"]}
- Questions: {summary["n_pairs"]} synthetic questions from the `{cfg["generator"]}` generator;
  {summary["n_train"]} for training, {summary["n_eval"]} held out (questions of {summary["n_eval_chunks"]} chunks that were never trained on)

## Retrieval on held-out questions

Exact FAISS inner-product search over all {summary["n_chunks"]} chunks, the same index settings before and after.
{"The fine-tuned model beats the base model." if metrics.get("improved") else "**The fine-tuned model did not beat the base model on these questions.**"}

{metrics_table(metrics)}
{_dims_section(metrics)}{_pairs_section(metrics)}{_selection_section(summary)}
## Training settings

| setting | value |
|---|---|
| loss | MultipleNegativesRankingLoss over rows of one chunk and {cfg.get("queries_per_row", cfg["questions_per_chunk"])} of its questions (no-duplicates batches) |
| questions | {cfg["questions_per_chunk"]} per chunk from the `{cfg["generator"]}` generator, and {cfg.get("lexical_per_chunk", 0)} BM25-labelled spans per training chunk (lexical distillation) |
| hard negatives | {"one per chunk, mined with the base model" if cfg.get("hard_negatives") else "none (in-batch negatives only)"} |
| epochs | {cfg["epochs"]} |
| batch size | {cfg["batch_size"]} chunks |
| learning rate | {cfg["learning_rate"]} |
| warmup ratio | {cfg["warmup_ratio"]} |
| weight decay | {cfg["weight_decay"]} |
| steps | {summary["train"]["steps"]} |
| seed | {cfg["seed"]} |
| max sequence length | {summary["max_seq_length"]} |

## Usage

sentence-transformers:

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{load_path}")
embeddings = model.encode(["What does the framework say about incident response?"], normalize_embeddings=True)
```

LangChain:

```python
from langchain_huggingface import HuggingFaceEmbeddings

embeddings = HuggingFaceEmbeddings(model_name="{load_path}", encode_kwargs={{"normalize_embeddings": True}})
```

LlamaIndex:

```python
from llama_index.embeddings.huggingface import HuggingFaceEmbedding

embed_model = HuggingFaceEmbedding(model_name="{load_path}")
```
"""
    return "\n".join(front) + "\n" + body


def render_report(summary: dict[str, Any], metrics: dict[str, Any]) -> str:
    """A short human-readable report of the run: what was read, dropped, trained and measured."""
    lines = ["# ragtune run report", "", "## Retrieval on held-out questions", "", metrics_table(metrics), ""]
    lines.append(
        "Verdict: the fine-tuned model is better than the base."
        if metrics.get("improved")
        else "Verdict: NOT IMPROVED - the fine-tuned model is not better than the base; `ragtune push` refuses it without --force."
    )
    lines += recommendation(metrics)
    lines += ["", "## Counts", ""]
    for key in ("files", "n_pages", "n_chunks", "n_pairs", "n_train", "n_eval", "n_eval_chunks"):
        lines.append(f"- {key}: {summary[key] if key != 'files' else ', '.join(summary[key])}")
    lines += ["", "## Skipped or dropped", ""]
    examples = summary.get("skipped_examples", {})
    for stage, counts in summary["skipped"].items():
        for reason, n in counts.items():
            which = examples.get(stage, {}).get(reason, [])
            # Up to five files or pages are named; manifest.json keeps the same.
            more = f", and {n - len(which)} more" if n > len(which) else ""
            lines.append(f"- {stage}: {reason}: {n}" + (f" ({', '.join(which)}{more})" if which else ""))
    if not any(summary["skipped"].values()):
        lines.append("- nothing")
    return "\n".join(lines) + "\n"
