"""The run's pictures: PNG plots (matplotlib) and report.html, one self-contained page that embeds them.

RUN/report.html            verdict, tables and the three plots, nothing fetched from elsewhere
RUN/plots/retrievers.png   every metric for every retriever measured, base to hybrid
RUN/plots/validation.png   the validation score at each checkpoint, against the base model's
RUN/plots/themes.png       hit@5 before and after for the held-out questions of each theme
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from .card import METRIC_KEYS, recommendation, retriever_rows
from .fileio import atomic_write_bytes, atomic_write_text
from .metrics import cutoff_advice, theme_figures
from .names import BASE, FINE_TUNED
from .report import (
    GLOSSARY,
    SEARCH_K,
    count_lines,
    data_problems,
    filtered,
    pages_text,
    served_label,
    snippet,
    store_hybrid_lines,
)

# One colour per retriever, the same in every plot (matplotlib's tab10, colour-blind friendlier than its default).
COLOURS = ["#9e9e9e", "#c7c7c7", "#1f77b4", "#aec7e8", "#ff7f0e", "#2ca02c"]
THEMES_SHOWN = 12


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _png(fig: Any) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def draw_retrievers(metrics: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Grouped bars: a group per metric, a bar per retriever, each bar labelled with its value.

    Returns the PNG and what the figure shows, read back from matplotlib: the bar labels in drawing order
    (retriever by retriever), the legend and the axis label, so a test checks the labels, not pixels."""
    rows = retriever_rows(metrics)
    keys = [k for k in METRIC_KEYS if k in metrics[FINE_TUNED]]
    fig, ax = _figure(10.0, 4.6)
    width = 0.84 / len(rows)
    labels: list[str] = []
    for i, (label, m) in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(keys))]
        bars = ax.bar(xs, [m[k] for k in keys], width, label=label, color=COLOURS[i % len(COLOURS)])
        # Upright figures fit over bars this narrow; every bar has one, so no retriever has to be guessed.
        texts = ax.bar_label(bars, fmt="%.2f", fontsize=6.5, padding=2, rotation=90)
        labels += [t.get_text() for t in texts]
    ax.set_xticks(range(len(keys)), [k.replace("mrr@10", "MRR@10") for k in keys])
    # Head room above 1.0 for the figures and the legend, so that neither covers a bar.
    ax.set_ylim(0, 1.42)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    # hit@k is a share of questions, MRR@10 a mean of 1/rank: the label says both.
    ax.set_ylabel("hit@k: share of questions found in the top k\nMRR@10: mean of 1/rank (0 beyond 10)", fontsize=8)
    ax.set_title(
        f"Retrieval on {metrics['n_queries']} held-out questions over {metrics['n_chunks']} chunks", fontsize=10
    )
    ax.legend(fontsize=7, ncol=3, loc="upper left", frameon=False)
    drawn = {
        "bar_labels": labels,
        "legend": [t.get_text() for t in ax.get_legend().get_texts()],
        "ylabel": ax.get_ylabel(),
    }
    return _png(fig), drawn


def retrievers_plot(metrics: dict[str, Any]) -> bytes:
    """The retrievers figure as PNG bytes (see draw_retrievers)."""
    return draw_retrievers(metrics)[0]


def validation_plot(validation: dict[str, Any]) -> bytes | None:
    """The validation score at each checkpoint, the base model's as a line, the kept checkpoint marked."""
    history = validation.get("history") or []
    if not history or validation.get("base_score") is None:
        return None
    fig, ax = _figure(6.0, 3.2)
    steps, scores = [0] + [int(s) for s, _ in history], [validation["base_score"]] + [float(v) for _, v in history]
    ax.plot(steps, scores, marker="o", color=COLOURS[2], label="fine-tuned checkpoint")
    ax.axhline(validation["base_score"], color=COLOURS[0], linestyle="--", label="base model")
    if validation.get("best_step") is not None:
        best = dict(zip(steps, scores)).get(int(validation["best_step"]))
        if best is not None:
            ax.plot(
                [validation["best_step"]],
                [best],
                marker="*",
                markersize=14,
                color=COLOURS[4],
                linestyle="",
                label=f"kept (step {validation['best_step']})",
            )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training step")
    ax.set_ylabel("validation MRR@10")
    ax.set_title(f"Validation on {validation.get('n_questions', '?')} questions of unseen chunks", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    return _png(fig)


def themes_plot(per_theme: dict[str, dict[str, Any]]) -> bytes | None:
    """Horizontal bars of hit@5 of the base and fine-tuned models, for the themes with the most held-out questions."""
    shown = [(t, theme_figures(r)) for t, r in list(per_theme.items())[:THEMES_SHOWN]]
    if not shown:
        return None
    fig, ax = _figure(6.5, 0.9 + 0.32 * len(shown))
    ys = range(len(shown))
    ax.barh([y + 0.2 for y in ys], [f[1] for _, f in shown], 0.4, color=COLOURS[0], label="base")
    ax.barh([y - 0.2 for y in ys], [f[2] for _, f in shown], 0.4, color=COLOURS[2], label="fine-tuned")
    ax.set_yticks(list(ys), [f"{t} ({f[0]})" for t, f in shown], fontsize=7.5)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("hit@5 (with passages where built)")
    ax.set_title("Per theme (held-out questions)", fontsize=10, loc="left")
    ax.legend(fontsize=7, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2)
    return _png(fig)


def inline(text: str) -> str:
    """Text as HTML, its `backticked` parts as <code>.

    >>> inline("run `ragtune push` <now>")
    'run <code>ragtune push</code> &lt;now&gt;'
    """
    import re

    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def _metrics_table_html(metrics: dict[str, Any]) -> str:
    """One row per retriever, the served one marked (class "served" and a tag in its first cell)."""
    keys = [k for k in METRIC_KEYS if k in metrics.get(FINE_TUNED, {})]
    served = served_label(metrics)
    heads = "".join(f"<th>{k.replace('mrr@10', 'MRR@10')}</th>" for k in keys)
    out = [f"<table id=retrievers><thead><tr><th>retriever</th>{heads}"]
    out.append("</tr></thead><tbody>")
    for label, m in retriever_rows(metrics):
        mark = label == served
        out.append(
            f"<tr{' class=served' if mark else ''}><td>{html.escape(label)}"
            + (" <span class=tag>served</span>" if mark else "")
            + "</td>"
            + "".join(f"<td>{m[k]:.3f}</td>" for k in keys)
            + "</tr>"
        )
    return "\n".join(out) + "</tbody></table>"


STYLE = """body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:960px;margin:2em auto;
padding:0 1em;color:#222}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}.verdict{padding:.6em 1em;border-radius:6px;background:#e8f5e9}
.bad{background:#ffebee}.warn{padding:.6em 1em;border-radius:6px;background:#fff8e1}img{max-width:100%}
code{background:#f4f4f4;padding:0 .2em;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
tr.served td{background:#e3f2fd;font-weight:600}.tag{font-size:.75em;background:#1f77b4;color:#fff;
border-radius:3px;padding:0 .4em;margin-left:.4em}.facts{color:#555}.ok{padding:.6em 1em;border-radius:6px;
background:#f1f8e9}dt{font-weight:600}dd{margin:0 0 .4em 1.2em}.cols{display:flex;gap:1.5em}.cols>div{flex:1}
li{margin:.25em 0}.chunk{color:#555;font-size:.9em}"""


def _hit_item(hit: dict[str, Any], own: str | None) -> str:
    found = " <span class=tag>its chunk</span>" if hit["chunk_id"] == own else ""
    return (
        f'<li data-chunk="{html.escape(hit["chunk_id"])}">{hit["score"]:.3f} '
        f"{html.escape(pages_text(hit['source'], hit['pages']))}{found}<br>"
        f"<span class=chunk>{html.escape(snippet(hit['text'], 30))}</span></li>"
    )


def _samples_html(extras: dict[str, Any]) -> list[str]:
    """Five held-out questions with their chunk, and one search with the base and the tuned model."""
    parts: list[str] = []
    if extras.get("samples"):
        parts.append("<section id=samples><h2>Sample held-out questions</h2><ol>")
        for s in extras["samples"]:
            parts.append(
                f'<li data-question="{html.escape(s["question"])}" data-chunk="{html.escape(s["chunk_id"])}">'
                f"{html.escape(s['question'])} <span class=facts>({html.escape(s['kind'])})</span><br>"
                f"<span class=chunk>its chunk, {html.escape(pages_text(s['source'], s['pages']))}: "
                f"{html.escape(snippet(s['text']))}</span></li>"
            )
        parts.append("</ol></section>")
    found = extras.get("search")
    if found:
        own = next((s["chunk_id"] for s in extras.get("samples", []) if s["question"] == found["question"]), None)
        if "skipped" in found:
            return parts + [
                "<section id=sample-search><h2>Sample search</h2>"
                f"<p>Sample search not shown: {html.escape(found['skipped'])}</p></section>"
            ]
        parts.append(
            f'<section id=sample-search data-query="{html.escape(found["question"])}"><h2>Sample search</h2>'
            f"<p>{html.escape(found['question'])} <span class=facts>(dense search, top {SEARCH_K} chunks)</span></p>"
            "<div class=cols>"
        )
        for which, title in (("base", "base model"), ("tuned", "fine-tuned model")):
            items = "".join(_hit_item(h, own) for h in found[which])
            parts.append(f"<div><h3>{title}</h3><ol id=search-{which}>{items}</ol></div>")
        parts.append("</div></section>")
    return parts


def render_html(
    summary: dict[str, Any], metrics: dict[str, Any], images: dict[str, bytes], extras: dict[str, Any] | None = None
) -> str:
    """report.html: everything inline (styles and PNGs as data URIs), so it opens anywhere, offline. `extras`
    (report.report_extras) adds run facts, sample questions and a sample search."""
    improved = bool(metrics.get("improved"))
    verdict = (
        "The fine-tuned model beats the base model on held-out questions."
        if improved
        else "NOT IMPROVED: the fine-tuned model is not better than the base model; `ragtune push` refuses it "
        "without --force."
    )
    title = html.escape(summary["config"]["out"])
    parts = [
        f"<!doctype html><html lang=en><meta charset=utf-8><title>ragtune run report: {title}</title>"
        f"<style>{STYLE}</style><body>",
        f"<h1>ragtune run report: {title}</h1>",
    ]
    if extras:
        parts.append(f"<p id=run-facts class=facts>{' · '.join(html.escape(f) for f in extras['facts'])}</p>")
    parts.append(f'<p class="verdict{"" if improved else " bad"}">{inline(verdict)}</p>')
    for line in recommendation(metrics):
        parts.append(f"<p>{inline(line)}</p>")
    sim = metrics.get("similarity") or {}
    if sim.get("warn"):
        advice = cutoff_advice(sim[BASE]["median"], sim[FINE_TUNED]["median"])
        parts.append(f"<p class=warn>Similarity scores moved: {inline(advice)}</p>")
    parts += ["<h2>Retrieval on held-out questions</h2>", _metrics_table_html(metrics)]
    store = store_hybrid_lines(summary, metrics)
    if store:
        parts.append("<section id=store-hybrid><h2>Run the hybrid in your vector store</h2><ul>")
        parts += [f"<li>{inline(line)}</li>" for line in store]
        parts.append("</ul></section>")
    problems = data_problems(summary)
    parts.append(f"<div id=data-problems class={'warn' if problems else 'ok'}><h2>Data problems</h2>")
    parts.append(
        "<ul>" + "".join(f"<li>{inline(p)}</li>" for p in problems) + "</ul>"
        if problems
        else "<p>None: every file, page and line was read.</p>"
    )
    dropped = filtered(summary)
    if dropped:
        parts.append(
            "<p>Also dropped, by design (filters, not problems with the data): "
            + html.escape("; ".join(dropped))
            + ".</p>"
        )
    parts.append("</div>")
    captions = {
        "retrievers": "Every retriever on every metric",
        "validation": "Validation during training",
        "themes": "hit@5 per theme",
    }
    for name, data in images.items():
        parts.append(
            f'<h2>{captions[name]}</h2><img alt="{captions[name]}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        )
    if extras:
        parts += _samples_html(extras)
    parts.append("<h2>Glossary</h2><dl id=glossary>")
    parts += [f"<dt>{html.escape(term)}</dt><dd>{inline(text)}</dd>" for term, text in GLOSSARY]
    parts.append("</dl><h2>Counts</h2><table>")
    parts += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in count_lines(summary)]
    parts.append("</table>")
    parts.append(
        "<p>Details: <code>report.md</code>, <code>metrics.json</code>, the model card "
        "<code>model/README.md</code>.</p></body></html>"
    )
    return "\n".join(parts) + "\n"


def write_report_html(
    run_dir: Path, summary: dict[str, Any], metrics: dict[str, Any], extras: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write the plots to RUN/plots/ and report.html beside them; returns what was written."""
    made = {
        "retrievers": retrievers_plot(metrics),
        "validation": validation_plot((summary.get("train") or {}).get("validation") or {}),
        "themes": themes_plot(metrics.get("per_theme") or {}),
    }
    images = {name: data for name, data in made.items() if data is not None}
    written: dict[str, Path] = {}
    for name, data in images.items():
        written[name] = run_dir / "plots" / f"{name}.png"
        written[name].parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(written[name], data)
    written["html"] = run_dir / "report.html"
    atomic_write_text(written["html"], render_html(summary, metrics, images, extras))
    return written
