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

from .card import METRIC_KEYS, metrics_table, recommendation, retriever_rows
from .fileio import atomic_write_bytes, atomic_write_text

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


def retrievers_plot(metrics: dict[str, Any]) -> bytes:
    """Grouped bars: a group per metric, a bar per retriever."""
    rows = retriever_rows(metrics)
    keys = [k for k in METRIC_KEYS if k in metrics["after"]]
    fig, ax = _figure(8.5, 3.8)
    width = 0.8 / len(rows)
    # Figures on the bars a RAG app would use, the dense index it gets and the hybrid, not on every bar.
    labelled = "fine-tuned, with passages" if "after_passages" in metrics else "fine-tuned"
    for i, (label, m) in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(keys))]
        bars = ax.bar(xs, [m[k] for k in keys], width, label=label, color=COLOURS[i % len(COLOURS)])
        if label == labelled or label.startswith("hybrid"):
            ax.bar_label(bars, fmt="%.2f", fontsize=6.5, padding=1)
    ax.set_xticks(range(len(keys)), keys)
    # Head room above 1.0 for the legend, so that it never covers a bar.
    ax.set_ylim(0, 1.32)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("share of held-out questions")
    ax.set_title(
        f"Retrieval on {metrics['n_queries']} held-out questions over {metrics['n_chunks']} chunks", fontsize=10
    )
    ax.legend(fontsize=7, ncol=3, loc="upper left", frameon=False)
    return _png(fig)


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
    """Horizontal bars of hit@5 before and after, for the themes with the most held-out questions."""
    from .metrics import theme_figures  # either form of per_theme: an older run's names no metric

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


def _md_table_html(markdown: str) -> str:
    """The card's markdown metrics table as an HTML table."""
    lines = [line.strip().strip("|").split("|") for line in markdown.splitlines() if line.startswith("|")]
    head, rows = lines[0], lines[2:]
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(c.strip())}</th>" for c in head) + "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in row) + "</tr>")
    return "\n".join(out) + "</tbody></table>"


STYLE = """body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:960px;margin:2em auto;
padding:0 1em;color:#222}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}.verdict{padding:.6em 1em;border-radius:6px;background:#e8f5e9}
.bad{background:#ffebee}.warn{padding:.6em 1em;border-radius:6px;background:#fff8e1}img{max-width:100%}
code{background:#f4f4f4;padding:0 .2em}"""


def render_html(summary: dict[str, Any], metrics: dict[str, Any], images: dict[str, bytes]) -> str:
    """report.html: everything inline (styles and PNGs as data URIs), so it opens anywhere, offline."""
    improved = bool(metrics.get("improved"))
    verdict = (
        "The fine-tuned model beats the base model on held-out questions."
        if improved
        else "NOT IMPROVED: the fine-tuned model is not better than the base model; `ragtune push` refuses it "
        "without --force."
    )
    parts = [
        f"<!doctype html><html lang=en><meta charset=utf-8><title>ragtune run report: "
        f"{html.escape(summary['config']['out'])}</title><style>{STYLE}</style><body>",
        f"<h1>ragtune run report: {html.escape(summary['config']['out'])}</h1>",
        f'<p class="verdict{"" if improved else " bad"}">{html.escape(verdict)}</p>',
    ]
    for line in recommendation(metrics):
        parts.append(f"<p>{html.escape(line)}</p>")
    sim = metrics.get("similarity") or {}
    if sim.get("warn"):
        from .metrics import cutoff_advice

        advice = cutoff_advice(sim["before"]["median"], sim["after"]["median"])
        parts.append(f"<p class=warn>Similarity scores moved: {html.escape(advice)}</p>")
    parts += ["<h2>Retrieval on held-out questions</h2>", _md_table_html(metrics_table(metrics))]
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
    parts += ["<h2>Counts</h2><table>"]
    for key, label in (
        ("n_pages", "pages"),
        ("n_chunks", "chunks"),
        ("n_pairs", "questions kept"),
        ("n_train", "training questions"),
        ("n_eval", "held-out questions"),
    ):
        parts.append(f"<tr><td>{label}</td><td>{summary[key]}</td></tr>")
    parts.append(f"<tr><td>files</td><td>{len(summary['files'])}</td></tr></table>")
    parts.append(
        "<p>Details: <code>report.md</code>, <code>metrics.json</code>, the model card "
        "<code>model/README.md</code>.</p></body></html>"
    )
    return "\n".join(parts) + "\n"


def write_report_html(run_dir: Path, summary: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Path]:
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
    atomic_write_text(written["html"], render_html(summary, metrics, images))
    return written
