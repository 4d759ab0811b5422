"""What report.md and report.html say beyond the metrics table: run facts, data problems, a glossary, the served
row, sample held-out questions, a sample search base vs tuned, and how to run the hybrid in a vector store.

The save stage gathers the parts that need the run folder (`report_extras`); the renderers (card.render_report,
plots.render_html) lay them out as markdown or HTML. Text here may hold `code` in backticks: the HTML renderer
turns it into <code>.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import extract as x
from .errors import RagtuneError
from .extract import describe_skips
from .garbled import reads_clean
from .metrics import retriever_rows
from .models import base_model_label
from .names import FINE_TUNED, FINE_TUNED_PASSAGES, upgrade_counts
from .search import load_retriever, pages_label

# The five terms a reader of the metrics table needs.
GLOSSARY = (
    ("hit@k", "the share of held-out questions whose own chunk is among the first k results."),
    (
        "MRR@10",
        "mean reciprocal rank: the mean over questions of 1/rank of the question's own chunk (1 at rank 1, "
        "0.5 at rank 2, 0 beyond rank 10). Not a share of questions.",
    ),
    ("BM25", "keyword search: ranks chunks by the question's words they contain, rarer words counting more."),
    ("hybrid", "the fine-tuned model's and BM25's scores, each scaled to [0, 1] per question, in a weighted sum."),
    (
        "served",
        "the retriever that `ragtune search` and `ragtune.Retriever` use for this run by default (marked in the "
        "table).",
    ),
)
SAMPLES = 5
SEARCH_K = 3


def advice() -> dict[str, str]:
    """What to do about the skip reasons whose own wording does not say it."""
    return {
        x.SKIP_UNSUPPORTED: "convert it to .pdf, .txt or .md to have it read",
        x.SKIP_EMPTY_TEXT: "nothing to do unless it should hold text",
        x.SKIP_EMPTY_PAGE: "a scanned page? OCR the PDF, e.g. `ocrmypdf in.pdf out.pdf`",
        x.SKIP_EXCLUDED: "change --exclude or --include to read it",
        # ocrmypdf leaves pages that have a text layer alone unless forced.
        x.SKIP_GARBLED_LINE: "OCR the PDF to recover them, e.g. `ocrmypdf --force-ocr in.pdf out.pdf`",
    }


def served_label(metrics: dict[str, Any]) -> str | None:
    """The label (as card.retriever_rows writes it) of the row the run serves, or None for an older run."""
    mode = (metrics.get("served") or {}).get("mode")
    dense = FINE_TUNED_PASSAGES if FINE_TUNED_PASSAGES in metrics else FINE_TUNED
    wanted = {"dense": dense, "hybrid": "hybrid", "bm25": "bm25"}
    if mode not in wanted or wanted[mode] not in metrics:
        return None
    return next(label for label, m in retriever_rows(metrics) if m is metrics[wanted[mode]])


def duration_label(seconds: float) -> str:
    """ "duration 83 s (1 min 23 s)": whole seconds first, so a reader can compare runs.

    >>> duration_label(83.4), duration_label(12)
    ('duration 83 s (1 min 23 s)', 'duration 12 s')
    """
    s = round(seconds)
    return f"duration {s} s" + (f" ({s // 60} min {s % 60} s)" if s >= 60 else "")


def run_facts(summary: dict[str, Any], seconds: float, when: datetime | None = None) -> list[str]:
    """Base model, date, duration, device and ragtune version, one short phrase each."""
    when = when or datetime.now(timezone.utc)
    version = (summary.get("versions") or {}).get("ragtune") or summary["config"].get("version") or "unknown"
    return [
        f"base model {base_model_label(summary['config']['base_model'])}",
        f"finished {when.strftime('%Y-%m-%d %H:%M')} UTC",
        duration_label(seconds) + " (the stages' times, reused stages included)",
        f"device {(summary.get('train') or {}).get('device') or summary['config'].get('device') or 'unknown'}",
        f"ragtune {version}",
    ]


def data_problems(summary: dict[str, Any]) -> list[str]:
    """One line per thing extraction could not read (file, page or line), with examples and what to do."""
    skipped = summary["skipped"].get("extract") or {}
    examples = (summary.get("skipped_examples") or {}).get("extract") or {}
    # Files left out by --exclude/--include are a choice (the default leaves out README, SOURCES, ...): filtered()
    # lists them with what was dropped by design.
    skipped = {reason: n for reason, n in skipped.items() if reason != x.SKIP_EXCLUDED}
    lines = describe_skips({"counts": skipped, "examples": examples}, names=5)
    todo = advice()
    return [line + (f" (what to do: {todo[reason]})" if reason in todo else "") for line, reason in zip(lines, skipped)]


def filtered(summary: dict[str, Any]) -> list[str]:
    """What was left out on purpose (files --exclude/--include leave out, short chunks, duplicate questions): not
    problems with the data."""
    lines = []
    excluded = (summary["skipped"].get("extract") or {}).get(x.SKIP_EXCLUDED)
    if excluded:
        names = ((summary.get("skipped_examples") or {}).get("extract") or {}).get(x.SKIP_EXCLUDED) or []
        lines.append(f"extract: {x.SKIP_EXCLUDED}: {excluded} ({', '.join([*names[:5], advice()[x.SKIP_EXCLUDED]])})")
    return lines + [
        f"{stage}: {reason}: {n}"
        for stage, counts in summary["skipped"].items()
        if stage != "extract"
        for reason, n in counts.items()
    ]


def count_lines(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """The run's counts, named in words."""
    summary = upgrade_counts(summary)  # card.json of a run an older ragtune saved
    return [
        ("files", f"{len(summary['files'])} ({', '.join(summary['files'])})"),
        ("pages", summary["n_pages"]),
        ("chunks", summary["n_chunks"]),
        ("questions kept", summary["n_pairs"]),
        ("training questions", summary["n_train"]),
        ("held-out questions", summary["n_test"]),
        ("held-out chunks", summary["n_test_chunks"]),
    ]


def store_hybrid_lines(summary: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """How to run the served hybrid in the app's own vector store (docs/vector-stores.md); nothing when the run
    does not serve the hybrid."""
    if (metrics.get("served") or {}).get("mode") != "hybrid":
        return []
    weight = metrics.get("hybrid_weight")
    weight = 0.5 if weight is None else weight
    run = summary["config"].get("out_as_given") or summary["config"]["out"]
    return [
        f"Qdrant: `ragtune export {run} --to qdrant TARGET --collection docs` also writes BM25's side as a sparse "
        'vector; query both and let Qdrant fuse them with `ragtune.stores.qdrant.hybrid_search(client, "docs", '
        f"vector, question, k=5, weight={weight:.1f})`.",
        f"LanceDB: `ragtune export {run} --to lancedb TARGET --collection docs` also builds a full-text index, "
        'so `table.search(query_type="hybrid")` runs the hybrid in LanceDB.',
        'Chroma has no lexical index: use `ragtune.Retriever.load(RUN).as_langchain(mode="hybrid")` there. '
        "The stores fuse ranks or scores their own way, so their top results agree with ragtune's hybrid "
        "mostly, not exactly (ragtune's docs/vector-stores.md).",
    ]


def sample_questions(chunks: list[Any], held_out: list[Any], n: int = SAMPLES) -> list[dict[str, Any]]:
    """`n` held-out questions of different chunks, spread evenly over the documents (chunks are in document
    order), each with its chunk. Questions that end in "?" and read clean come first; others only fill up."""
    by_id = {c.id: c for c in chunks}
    first: dict[str, Any] = {}  # one question per chunk, the best-reading one
    for pair in held_out:
        if pair.chunk_id not in by_id:
            continue
        good = pair.query.rstrip().endswith("?") and reads_clean(pair.query)
        kept = first.get(pair.chunk_id)
        if kept is None or (good and not kept[0]):
            first[pair.chunk_id] = (good, pair)
    position = {c.id: i for i, c in enumerate(chunks)}
    ordered = sorted(first.values(), key=lambda kept: position[kept[1].chunk_id])
    good = [p for ok, p in ordered if ok]
    rest = [p for ok, p in ordered if not ok]
    spread = sorted(_spread(good, n, lambda p: by_id[p.chunk_id].source), key=lambda p: position[p.chunk_id])
    picked = (spread + rest)[:n]
    return [
        {
            "question": " ".join(pair.query.split()),
            "kind": pair.kind,
            "chunk_id": pair.chunk_id,
            "source": by_id[pair.chunk_id].source,
            "pages": list(by_id[pair.chunk_id].pages),
            "text": by_id[pair.chunk_id].text,
        }
        for pair in picked
    ]


def _spread(items: list[Any], n: int, group: Any) -> list[Any]:
    """Up to `n` items, shared out over the groups in turn (each document its share) and evenly spaced within each.

    >>> _spread(list("aaaabbc"), 4, lambda x: x)
    ['a', 'a', 'b', 'c']
    """
    groups: dict[Any, list[Any]] = {}
    for item in items:
        groups.setdefault(group(item), []).append(item)
    share = dict.fromkeys(groups, 0)
    while sum(share.values()) < min(n, len(items)):
        for g in groups:
            if share[g] < len(groups[g]) and sum(share.values()) < n:
                share[g] += 1
    picked = []
    for g, members in groups.items():
        k = share[g]
        picked += [members[round(i * (len(members) - 1) / (k - 1))] for i in range(k)] if k > 1 else members[:k]
    return picked


def sample_search(run_dir: Path, question: str, device: str = "", k: int = SEARCH_K) -> dict[str, Any]:
    """The first `k` chunks for one held-out question, dense search with the base model and the tuned one."""
    found: dict[str, Any] = {"question": question}
    for which in ("base", "tuned"):
        hits = load_retriever(run_dir, which, device).search(question, k=k, mode="dense")
        found[which] = [
            {"chunk_id": h.chunk_id, "source": h.source, "pages": list(h.pages), "score": h.score, "text": h.text}
            for h in hits
        ]
    return found


def report_extras(
    run_dir: Path, summary: dict[str, Any], chunks: list[Any], held_out: list[Any], seconds: float, device: str = ""
) -> dict[str, Any]:
    """What the save stage adds to the report from the run folder: facts, samples and the sample search."""
    import re

    samples = sample_questions(chunks, held_out)
    search = None
    if samples:
        try:
            search = sample_search(run_dir, samples[0]["question"], device)
        except RagtuneError as e:
            # A base model moved since the run (the save stage can rerun alone): the rest of the report stands.
            # Folder names only, as everywhere in the report.
            search = {"question": samples[0]["question"], "skipped": re.sub(r"(?<=')/(?:[^'/]+/)+", "", str(e))}
    return {"facts": run_facts(summary, seconds), "samples": samples, "search": search}


def pages_text(source: str, pages: list[int]) -> str:
    return f"{source} {pages_label(pages)}".strip()


def snippet(text: str, words: int = 45) -> str:
    """The first `words` words of a chunk, on one line."""
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def facts_line(extras: dict[str, Any] | None) -> list[str]:
    """The run facts under report.md's title, as report.html shows them."""
    return ["", "## Run facts", "", *(f"- {fact}" for fact in extras["facts"])] if extras else []


def markdown_sections(summary: dict[str, Any], metrics: dict[str, Any], extras: dict[str, Any] | None) -> list[str]:
    """report.md's sections after the verdict, as markdown lines."""
    lines: list[str] = []
    store = store_hybrid_lines(summary, metrics)
    if store:
        lines += ["", "## Run the hybrid in your vector store", "", *(f"- {line}" for line in store)]
    problems = data_problems(summary)
    lines += ["", "## Data problems", ""]
    lines += [f"- {p}" for p in problems] or ["- none: every file, page and line was read"]
    lines += ["", "## Counts", "", *(f"- {k}: {v}" for k, v in count_lines(summary))]
    lines += ["", "## Also dropped (filters, by design)", ""]
    lines += [f"- {line}" for line in filtered(summary)] or ["- nothing"]
    lines += ["", "## Glossary", "", *(f"- **{term}**: {text}" for term, text in GLOSSARY)]
    if extras and extras["samples"]:
        lines += ["", "## Sample held-out questions", ""]
        for s in extras["samples"]:
            lines += [
                f"- {s['question']} ({s['kind']})",
                f"  - its chunk, {pages_text(s['source'], s['pages'])}: {snippet(s['text'])}",
            ]
    if extras and extras.get("search"):
        found = extras["search"]
        lines += ["", "## Sample search", ""]
        if "skipped" in found:
            return lines + [f"Sample search not shown: {found['skipped']}"]
        lines += [f"Question: {found['question']} (dense search, top {SEARCH_K})", ""]
        for which, title in (("base", "base model"), ("tuned", "fine-tuned model")):
            lines += [f"{title}:", ""]
            own = next((x["chunk_id"] for x in extras["samples"] if x["question"] == found["question"]), None)
            lines += [
                f"{i}. {h['score']:.3f} {pages_text(h['source'], h['pages'])}"
                + (" (its chunk)" if h["chunk_id"] == own else "")
                + f": {snippet(h['text'], 25)}"
                for i, h in enumerate(found[which], 1)
            ]
            lines.append("")
    return lines
