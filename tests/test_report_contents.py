"""What a user sees after a run: report.html (parsed with html.parser), report.md, retrievers.png (through the
labels the plot function drew) and the walkthrough notebook (its JSON), checked against the run's real files."""

from __future__ import annotations

import ast
import json
import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.runs import finished_tiny_run, good_docs

NOTEBOOK = REPO / "notebooks" / "walkthrough.ipynb"


class Page(HTMLParser):
    """The text under each element that has an id, the rows of each table and the <code> texts."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self, text: str) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.by_id: dict[str, str] = {}
        self.attrs_by_id: dict[str, dict[str, str]] = {}
        self.rows: list[tuple[dict[str, str], list[str]]] = []  # (tr attributes, cell texts)
        self.items: list[tuple[str, dict[str, str], str]] = []  # (id of the enclosing section, li attributes, text)
        self.codes: list[str] = []
        self._open: list[list[str]] = []  # text buffers of open elements
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        self.stack.append((tag, {k: v or "" for k, v in attrs}))
        self._open.append([])
        if tag == "tr":
            self._row: list[str] = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID or not self.stack:
            return
        name, attrs = self.stack.pop()
        assert name == tag, f"<{name}> closed by </{tag}>"
        text = " ".join("".join(self._open.pop()).split())
        if self._open:
            self._open[-1].append(" " + text + " ")
        if "id" in attrs:
            self.by_id[attrs["id"]] = text
            self.attrs_by_id[attrs["id"]] = attrs
        if tag == "code":
            self.codes.append(text)
        if tag in ("td", "th"):
            self._row.append(text)
        if tag == "tr":
            self.rows.append((attrs, self._row))
        if tag == "li":
            section = next((a["id"] for _, a in reversed(self.stack) if "id" in a), "")
            self.items.append((section, attrs, text))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].append(data)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, nist_pages) -> Path:
    """A finished tiny run over NIST prose, with a file ragtune cannot read and an empty one (data problems), and a
    SOURCES.md the default --exclude leaves out (a choice, not a problem)."""
    root = tmp_path_factory.mktemp("report_run")
    docs = good_docs(root / "docs", nist_pages)
    (docs / "notes.docx").write_bytes(b"PK\x03\x04 not really a Word file")
    (docs / "empty.txt").write_text("", encoding="utf-8")
    (docs / "SOURCES.md").write_text("Where each document came from.\n", encoding="utf-8")
    return finished_tiny_run(root, docs, tiny_model_dir)


@pytest.fixture(scope="module")
def page(run_dir: Path) -> Page:
    return Page((run_dir / "report.html").read_text(encoding="utf-8"))


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def metrics_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


def test_code_is_rendered_as_code_not_backticks(page: Page) -> None:
    visible = " ".join(page.by_id.values())
    assert "`" not in visible
    assert "ragtune push" in page.codes or any("ragtune" in c for c in page.codes)


def test_data_problems_box_names_each_skip_and_what_to_do(page: Page) -> None:
    box = page.by_id["data-problems"]
    assert "1 file skipped: unsupported file type" in box and "notes.docx" in box
    assert "1 file skipped: text file with no text" in box and "empty.txt" in box
    # Each problem says what to do.
    assert "convert" in box.lower() and ".pdf" in box


def test_a_file_the_default_exclude_skips_is_by_design_not_a_data_problem(page: Page, run_dir: Path) -> None:
    # The console names it only with --verbose; the report must not list a choice as a fault.
    box = page.by_id["data-problems"]
    problems = box.split("Also dropped")[0]
    assert "SOURCES.md" not in problems and "excluded" not in problems
    assert "SOURCES.md" in box.split("Also dropped")[1]
    markdown = (run_dir / "report.md").read_text(encoding="utf-8")
    section = markdown.split("## Data problems")[1].split("## Counts")[0]
    assert "SOURCES.md" not in section
    assert "SOURCES.md" in markdown.split("## Also dropped (filters, by design)")[1].split("##")[0]


def test_glossary_defines_every_term(page: Page) -> None:
    glossary = page.by_id["glossary"]
    for term in ("hit@k", "MRR@10", "BM25", "hybrid", "served"):
        assert term in glossary
    assert "1/rank" in glossary  # MRR@10 is defined, not only named


def test_served_row_is_marked_with_its_values(page: Page, run_dir: Path) -> None:
    served = metrics_of(run_dir)["served"]
    marked = [cells for attrs, cells in page.rows if "served" in attrs.get("class", "").split()]
    assert len(marked) == 1, page.rows
    label = {"hybrid": "hybrid", "bm25": "BM25", "dense": "fine-tuned"}[served["mode"]]
    assert marked[0][0].startswith(label) and "served" in marked[0][0]
    assert f"{served['hit@5']:.3f}" in marked[0] and f"{served['mrr@10']:.3f}" in marked[0]
    # The header names the metrics as the glossary and the plot do.
    assert page.rows[0][1] == ["retriever", "hit@1", "hit@3", "hit@5", "hit@10", "MRR@10"]


def test_run_facts_carry_the_runs_values(page: Page, run_dir: Path) -> None:
    facts = page.by_id["run-facts"]
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    manifest = json.loads((run_dir / "work" / "manifest.json").read_text(encoding="utf-8"))
    assert f"a local model ({Path(config['base_model']).name})" in facts
    assert datetime.now(timezone.utc).strftime("%Y-%m-%d") in facts
    assert "device cpu" in facts
    assert f"ragtune {manifest['ragtune_version']}" in facts
    seconds = sum(s.get("seconds", 0) for n, s in manifest["stages"].items() if n != "save")
    shown = re.search(r"duration (\d+) s", facts)
    assert shown and abs(int(shown.group(1)) - seconds) <= 1.5, (facts, seconds)


def test_five_sample_questions_with_their_own_chunk(page: Page, run_dir: Path) -> None:
    held_out = {p["query"]: p["chunk_id"] for p in jsonl(run_dir / "work" / "pairs_test.jsonl")}
    chunks = {c["id"]: c for c in jsonl(run_dir / "index" / "chunks.jsonl")}
    samples = [(attrs, text) for section, attrs, text in page.items if section == "samples"]
    assert len(samples) == 5
    for attrs, text in samples:
        question = attrs["data-question"]
        assert held_out[question] == attrs["data-chunk"]
        assert question in text
        chunk_start = " ".join(chunks[attrs["data-chunk"]]["text"].split())[:60]
        assert chunk_start in text
    # Spread over the held-out set, not five neighbours of its first chunk.
    held_out_files = {chunks[c]["source"] for c in held_out.values()}
    shown_files = {chunks[attrs["data-chunk"]]["source"] for attrs, _ in samples}
    assert len(shown_files) >= min(3, len(held_out_files)), (shown_files, held_out_files)


def test_sample_search_shows_base_and_tuned_top_3(page: Page, run_dir: Path) -> None:
    from ragtune import Retriever
    from ragtune.search import load_retriever

    query = page.attrs_by_id["sample-search"]["data-query"]
    for which, loaded in (("tuned", Retriever.load(run_dir)), ("base", load_retriever(run_dir, "base"))):
        shown = [attrs["data-chunk"] for section, attrs, _ in page.items if section == f"search-{which}"]
        expected = [h.chunk_id for h in loaded.search(query, k=3, mode="dense")]
        assert shown == expected, which
    # The question's own chunk is tagged wherever it is among the results, and only there.
    own = next(attrs["data-chunk"] for section, attrs, _ in page.items if attrs.get("data-question") == query)
    for section, attrs, text in page.items:
        if section.startswith("search-"):
            assert ("its chunk" in text) is (attrs["data-chunk"] == own)


def test_report_md_has_the_same_content_in_words(run_dir: Path) -> None:
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    for section in ("## Run facts", "## Data problems", "## Glossary", "## Sample held-out questions"):
        assert section in report
    assert "## Sample search" in report
    assert not re.search(r"\bn_[a-z_]+\b", report), re.search(r"\bn_[a-z_]+\b", report)
    manifest = json.loads((run_dir / "work" / "manifest.json").read_text(encoding="utf-8"))
    assert f"- pages: {manifest['stages']['extract']['n_pages']}" in report.splitlines()
    assert "(served)" in report
    assert "1 file skipped: unsupported file type (ignored): notes.docx" in report


def test_hybrid_in_a_store_is_said_only_when_the_hybrid_is_served(run_dir: Path) -> None:
    from ragtune.card import render_card, render_report
    from ragtune.plots import render_html

    saved = json.loads((run_dir / "work" / "card.json").read_text(encoding="utf-8"))
    summary, metrics = saved["summary"], saved["metrics"]
    hybrid = metrics | {"served": metrics["served"] | {"mode": "hybrid"}, "hybrid_weight": 0.6}
    dense = metrics | {"served": metrics["served"] | {"mode": "dense"}}
    for text in (render_report(summary, hybrid), render_html(summary, hybrid, {})):
        assert "--to qdrant" in text and "hybrid_search" in text and "weight=0.6" in text
        assert "--to lancedb" in text
    for text in (render_report(summary, dense), render_html(summary, dense, {})):
        assert "--to qdrant" not in text
    # The card names nothing a Hub reader lacks: no ragtune command, but how to build the hybrid.
    card = render_card(summary, hybrid)
    assert "sparse vector" in card and "full-text index" in card and "0.6" in card
    assert "ragtune export" not in card
    assert "sparse vector" not in render_card(summary, dense | {"hybrid": metrics["base"]})


def test_retrievers_plot_labels_every_bar_with_its_value(run_dir: Path) -> None:
    from ragtune.card import retriever_rows
    from ragtune.plots import draw_retrievers

    metrics = metrics_of(run_dir)
    png, drawn = draw_retrievers(metrics)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    keys = ["hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"]
    expected = [f"{m[k]:.2f}" for _, m in retriever_rows(metrics) for k in keys]
    assert drawn["bar_labels"] == expected
    assert drawn["legend"] == [label for label, _ in retriever_rows(metrics)]
    # MRR@10 is not a share of questions: the axis says what each group measures.
    assert "share of questions" not in drawn["ylabel"] or "MRR@10" in drawn["ylabel"]
    assert "MRR@10" in drawn["ylabel"] and "1/rank" in drawn["ylabel"]


def notebook_code() -> list[dict[str, Any]]:
    return [c for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def test_notebook_imports_only_public_names() -> None:
    import ragtune

    for cell in notebook_code():
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ragtune"):
                assert node.module == "ragtune", node.module
                assert all(a.name in ragtune.__all__ for a in node.names), [a.name for a in node.names]
            if isinstance(node, ast.Import):
                assert all(a.name == "ragtune" or not a.name.startswith("ragtune.") for a in node.names)


def test_notebook_shows_metrics_as_a_table_and_no_library_bars() -> None:
    code = notebook_code()
    assert any(".table()" in "".join(c["source"]) for c in code)
    saved = "".join("".join(o.get("text", "")) for c in code for o in c.get("outputs", []))
    assert not re.search(r"\d+%\|", saved) and "it/s]" not in saved, "library progress bars in saved outputs"
    assert "Writing model shards" not in saved and "Loading weights" not in saved
    # The table, not 16-digit JSON.
    assert not re.search(r"\d\.\d{7,}", saved)


def test_notebook_time_claim_matches_its_saved_stage_times() -> None:
    intro = "".join(json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"][0]["source"])
    saved = "".join("".join(o.get("text", "")) for c in notebook_code() for o in c.get("outputs", []))
    seconds = sum(float(s) for s in re.findall(r"^\[\d/\d\] \w+ +([\d.]+)s ", saved, flags=re.MULTILINE))
    claimed = re.search(r"about (\d+) minutes", intro)
    assert claimed and seconds > 0, intro
    assert abs(int(claimed.group(1)) - seconds / 60) <= 2, (claimed.group(0), seconds)


def test_data_problems_box_shows_the_blueprint_pages_lost_to_its_font(run_dir: Path) -> None:
    """The real Blueprint PDF: what its broken font costs is in the box, with the file's pages and what to do."""
    from ragtune.extract import extract_folder
    from ragtune.plots import render_html
    from tests.conftest import BLUEPRINT_PDF

    skipped = extract_folder(BLUEPRINT_PDF).skipped.to_dict()
    saved = json.loads((run_dir / "work" / "card.json").read_text(encoding="utf-8"))
    summary = saved["summary"] | {
        "skipped": saved["summary"]["skipped"] | {"extract": skipped["counts"]},
        "skipped_examples": {"extract": skipped["examples"]},
    }
    page = Page(render_html(summary, saved["metrics"], {}))
    box = page.by_id["data-problems"]
    pages = sum(n for reason, n in skipped["counts"].items() if reason.startswith("page "))
    assert pages >= 10, skipped["counts"]  # the Blueprint's pages in a font without a Unicode map
    assert f"{pages} pages skipped" in box or any(f"{n} pages skipped" in box for n in skipped["counts"].values())
    assert "blueprint_ai_bill_of_rights.pdf p" in box and "OCR the PDF" in box
    # Every line says what to do, the dropped lines too.
    problems = [text for section, _, text in page.items if section == "data-problems"]
    assert len(problems) == len(skipped["counts"]) and all("OCR" in text for text in problems), problems


def test_a_base_model_gone_since_the_run_leaves_out_only_the_sample_search(run_dir: Path, tmp_path: Path) -> None:
    """The save stage may rerun alone, after the base model folder was moved: the report says why the search is
    missing and keeps the rest."""
    import shutil

    from ragtune.card import render_report
    from ragtune.plots import render_html
    from ragtune.records import Chunk, Pair, read_jsonl
    from ragtune.report import report_extras

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    (copy / "config.json").write_text(json.dumps(config | {"base_model": str(tmp_path / "moved")}), encoding="utf-8")
    saved = json.loads((copy / "work" / "card.json").read_text(encoding="utf-8"))
    chunks = read_jsonl(copy / "index" / "chunks.jsonl", Chunk)
    extras = report_extras(
        copy, saved["summary"], chunks, read_jsonl(copy / "work" / "pairs_test.jsonl", Pair), 1.0, "cpu"
    )
    assert len(extras["samples"]) == 5
    page = Page(render_html(saved["summary"], saved["metrics"], {}, extras))
    assert "cannot load model" in page.by_id["sample-search"] and "moved" in page.by_id["sample-search"]
    assert not any(section.startswith("search-") for section, _, _ in page.items)
    assert "Sample search not shown: cannot load model" in render_report(saved["summary"], saved["metrics"], extras)
