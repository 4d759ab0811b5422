"""The model card and the run report, checked against a regex of the whole card (setfit style)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ragtune.card import render_card, render_report
from ragtune.config import Config
from ragtune.models import bundled_model_path

BUNDLED_ID = "sentence-transformers/all-MiniLM-L6-v2"
METRIC_KEYS = ["hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"]


def make_summary(base_model: str, themes_file: str | None = None) -> dict[str, Any]:
    """A summary shaped like ragtune.stages.save.summary's, for a run over the NIST PDF and a notes folder."""
    cfg = Config(
        docs=Path("/home/alice/corpus/docs"),
        out=Path("runs/nist"),
        base_model=base_model,
        batch_size=16,
        epochs=2.0,
        learning_rate=2e-5,
        max_steps=-1,
        themes_file=Path(themes_file) if themes_file else None,
    )
    return {
        "config": cfg.to_dict() | {"docs": "docs", "out": "nist", "out_as_given": "runs/nist"},
        "language": "en",
        "files": ["nist_ai_600_1.pdf", "notes/zero_trust.md"],
        "n_pages": 65,
        "n_chunks": 338,
        "max_seq_length": 256,
        "themes": "generative AI (201), risk management (150), safety (88); 12 chunks unthemed",
        "n_pairs": 1311,
        "n_train": 1049,
        "n_test": 262,
        "n_test_chunks": 68,
        "train": {"steps": 132, "device": "cpu", "final_loss": 0.41234},
        "skipped": {
            "extract": {"line of undecodable glyph codes (font without a Unicode map) dropped": 11},
            "chunk": {"chunk too short": 3, "duplicate chunk text": 2},
            "generate": {},
        },
    }


def make_metrics(improved: bool, bm25_hit5: float = 0.55) -> dict[str, Any]:
    before = {"hit@1": 0.31234, "hit@3": 0.5, "hit@5": 0.58015, "hit@10": 0.7, "mrr@10": 0.42}
    after = {"hit@1": 0.41986, "hit@3": 0.61, "hit@5": 0.69466, "hit@10": 0.8, "mrr@10": 0.5321}
    if not improved:
        before, after = after, before
    return {
        "base": before,
        "fine_tuned": after,
        "bm25": {"hit@1": 0.4, "hit@3": 0.5, "hit@5": bm25_hit5, "hit@10": 0.6, "mrr@10": 0.45},
        "improved": improved,
        "n_queries": 262,
        "n_chunks": 338,
        "test_set": "held-out synthetic questions (by chunk)",
    }


def front_matter(card: str) -> dict[str, Any]:
    m = re.match(r"\A---\n(.*?)\n---\n", card, flags=re.DOTALL)
    assert m, card[:200]
    data = yaml.safe_load(m.group(1))
    assert isinstance(data, dict)
    return data


SECTIONS = ["## Usage", "## Retrieval on held-out questions", "## Training data", "## Training settings"]


def hub_card(text: str, tmp_path: Path) -> Any:
    """The card as the Hub's own parser reads it."""
    from huggingface_hub import ModelCard

    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    return ModelCard.load(tmp_path / "README.md")


# An absolute POSIX or Windows path anywhere in the text (URLs are fine).
ABSOLUTE_PATH = re.compile(r"(?:^|[\s(\"'`=:])(?:/(?!/)[\w.-]+/|~/|[A-Za-z]:[\\/])", flags=re.MULTILINE)


@pytest.fixture
def local_base(tmp_path: Path) -> Path:
    base = tmp_path / "models" / "my-base"
    base.mkdir(parents=True)
    return base


@pytest.mark.parametrize("improved", [True, False])
@pytest.mark.parametrize("repo_id", [None, "alice/nist-minilm"])
def test_card_reads_as_a_hub_card(improved: bool, repo_id: str | None, tmp_path: Path) -> None:
    card = render_card(make_summary(""), make_metrics(improved), repo_id)
    data = hub_card(card, tmp_path).data
    assert data.base_model == BUNDLED_ID
    # The bundled all-MiniLM-L6-v2's own card says apache-2.0; the chunks read as English.
    assert data.license == "apache-2.0" and data.language == "en"
    assert data.library_name == "sentence-transformers" and data.pipeline_tag == "sentence-similarity"
    assert data.model_name == (repo_id or "ragtune-nist")
    assert [m for m in data.metrics] == [
        "cosine_accuracy@1",
        "cosine_accuracy@3",
        "cosine_accuracy@5",
        "cosine_accuracy@10",
        "cosine_mrr@10",
    ]
    body = card.split("\n---\n", 1)[1]
    assert body.lstrip().startswith(f"# {repo_id or 'ragtune-nist'}\n")
    assert [line for line in body.splitlines() if line in SECTIONS] == SECTIONS
    load = repo_id or "runs/nist/model"
    assert f'SentenceTransformer("{load}")' in card and f'HuggingFaceEmbeddings(model_name="{load}"' in card
    assert f'HuggingFaceEmbedding(model_name="{load}")' in card
    assert ("did not beat the base model" in card) is (not improved)
    assert "path/to/run" not in card and "ragtune-model" not in card


def test_card_eval_results_are_the_fine_tuned_figures(tmp_path: Path) -> None:
    metrics = make_metrics(True)
    data = hub_card(render_card(make_summary(""), metrics, "alice/nist-minilm"), tmp_path).data
    got = {r.metric_type: r.metric_value for r in data.eval_results}
    assert got == {
        f"cosine_accuracy@{k}": pytest.approx(metrics["fine_tuned"][f"hit@{k}"], abs=5e-5) for k in (1, 3, 5, 10)
    } | {"cosine_mrr@10": pytest.approx(metrics["fine_tuned"]["mrr@10"], abs=5e-5)}
    assert {r.task_type for r in data.eval_results} == {"information-retrieval"}


def test_card_names_no_file_and_shows_a_widget(tmp_path: Path) -> None:
    summary = make_summary("") | {
        "widget": {
            "source_sentence": "What is zero trust?",
            "sentences": ["Zero trust moves defences", "Incident response", "x"],
        }
    }
    card = render_card(summary, make_metrics(True), "alice/m", dataset_id="alice/m-pairs")
    data = hub_card(card, tmp_path).data
    assert data.widget == [summary["widget"]] and data.datasets == ["alice/m-pairs"]
    assert "nist_ai_600_1" not in card and "zero_trust.md" not in card
    assert "- Documents: 2 files (1 PDF, 1 Markdown), 65 pages" in card


def test_card_warns_when_scores_drop_and_maps_a_cutoff() -> None:
    from ragtune.metrics import similarity_shift

    metrics = make_metrics(True) | {
        "similarity": similarity_shift([0.5, 0.45, 0.6, 0.38, 0.7], [0.3, 0.28, 0.4, 0.2, 0.5])
    }
    card = render_card(make_summary(""), metrics)
    assert "## Similarity scores moved" in card and "re-tune that cutoff" in card
    assert "median of 0.30 with this model, against 0.50 with the base model" in card
    steady = make_metrics(True) | {"similarity": similarity_shift([0.5, 0.6], [0.52, 0.58])}
    assert "Similarity scores moved" not in render_card(make_summary(""), steady)


@pytest.mark.parametrize(
    ("base_model", "expected"),
    [("", BUNDLED_ID), ("BAAI/bge-small-en-v1.5", "BAAI/bge-small-en-v1.5"), ("bundled", BUNDLED_ID)],
)
def test_base_model_is_cited_by_hub_id(base_model: str, expected: str, tmp_path: Path) -> None:
    if base_model == "bundled":
        base_model = str(bundled_model_path())
    card = render_card(make_summary(base_model), make_metrics(True))
    assert front_matter(card)["base_model"] == expected
    assert f"from\n{expected} for retrieval" in card
    assert not ABSOLUTE_PATH.search(card)


def test_local_base_model_is_not_leaked_as_a_path(local_base: Path, tmp_path: Path) -> None:
    summary = make_summary(str(local_base), themes_file=str(tmp_path / "themes.yaml"))
    card = render_card(summary, make_metrics(True))
    report = render_report(summary, make_metrics(True))
    # A local folder has no Hub id: no base_model key rather than a path.
    assert "base_model" not in front_matter(card)
    assert "from\na local model (my-base) for retrieval" in card
    for text in (card, report):
        assert str(tmp_path) not in text
        assert "/home/alice" not in text
        assert not ABSOLUTE_PATH.search(text), ABSOLUTE_PATH.search(text)


def test_absolute_path_pattern_catches_paths() -> None:
    # The leak check itself must be able to fail.
    assert ABSOLUTE_PATH.search("from /home/alice/models/x for retrieval")
    assert ABSOLUTE_PATH.search('model_name="C:\\Users\\bob\\model"')
    assert not ABSOLUTE_PATH.search("see https://pypi.org/project/ragtune/ and path/to/run/model")


def test_metrics_table_rows() -> None:
    card = render_card(make_summary(""), make_metrics(True))
    assert "| base | 0.312 | 0.500 | 0.580 | 0.700 | 0.420 |" in card
    assert "| fine-tuned | 0.420 | 0.610 | 0.695 | 0.800 | 0.532 |" in card
    assert "| BM25 | 0.400 | 0.500 | 0.550 | 0.600 | 0.450 |" in card


def test_card_without_bm25_row() -> None:
    metrics = make_metrics(True)
    del metrics["bm25"]
    card = render_card(make_summary(""), metrics)
    assert "| BM25 |" not in card and "| fine-tuned |" in card


@pytest.mark.parametrize("improved", [True, False])
def test_report_verdict(improved: bool) -> None:
    report = render_report(make_summary(""), make_metrics(improved))
    assert report.startswith("# ragtune run report\n")
    assert ("NOT IMPROVED" in report) is (not improved)
    assert ("Verdict: the fine-tuned model is better than the base." in report) is improved
    if not improved:
        assert "--force" in report  # says what push will do


def test_report_counts_and_skips() -> None:
    report = render_report(make_summary(""), make_metrics(True))
    for line in [
        "- files: 2 (nist_ai_600_1.pdf, notes/zero_trust.md)",
        "- pages: 65",
        "- chunks: 338",
        "- questions kept: 1311",
        "- training questions: 1049",
        "- held-out questions: 262",
        "- held-out chunks: 68",
        "- 11 lines dropped: line of undecodable glyph codes (font without a Unicode map) dropped (what to do: OCR "
        "the PDF to recover them, e.g. `ocrmypdf --force-ocr in.pdf out.pdf`)",
        "- chunk: chunk too short: 3",
        "- chunk: duplicate chunk text: 2",
    ]:
        assert line in report.splitlines()
    assert "- nothing" not in report


def test_report_with_nothing_skipped() -> None:
    summary = make_summary("")
    summary["skipped"] = {"extract": {}, "chunk": {}, "generate": {}}
    report = render_report(summary, make_metrics(True))
    assert "## Data problems\n\n- none: every file, page and line was read\n" in report
    assert "## Also dropped (filters, by design)\n\n- nothing\n" in report


@pytest.mark.parametrize(
    ("hybrid", "recommended"),
    [((0.75, 0.6), True), ((0.69466, 0.5321), False), ((0.75, 0.5), False), ((0.6, 0.6), False)],
)
def test_report_recommends_hybrid_only_when_it_wins_on_both_metrics(
    hybrid: tuple[float, float], recommended: bool
) -> None:
    metrics = make_metrics(True)
    metrics["hybrid"] = {"hit@1": 0.5, "hit@3": 0.6, "hit@5": hybrid[0], "hit@10": 0.8, "mrr@10": hybrid[1]}
    report = render_report(make_summary(""), metrics)
    assert "| hybrid, fine-tuned + BM25 |" in report
    assert ("Recommendation: use hybrid retrieval" in report) is recommended


def test_report_says_when_bm25_alone_wins() -> None:
    report = render_report(
        make_summary(""),
        make_metrics(True, bm25_hit5=0.9)
        | {"bm25": {"hit@1": 0.5, "hit@3": 0.8, "hit@5": 0.9, "hit@10": 0.95, "mrr@10": 0.7}},
    )
    assert "BM25 alone beats the fine-tuned model on these held-out questions." in report


@pytest.mark.parametrize(
    ("mode", "says"),
    [("bm25", "Served: BM25 alone"), ("hybrid", "Served: the hybrid"), ("dense", "Served: the fine-tuned model alone")],
)
def test_recommendation_names_the_served_retriever(mode: str, says: str) -> None:
    from ragtune.card import recommendation

    row = {"hit@5": 0.5, "mrr@10": 0.4}
    metrics = {
        "fine_tuned": row,
        "fine_tuned_passages": row,
        "bm25": row,
        "hybrid": row,
        "hybrid_weight": 0.3,
        "served": {"mode": mode, "chosen_on": "validation questions", **row},
    }
    lines = recommendation(metrics)
    assert len(lines) == 1 and lines[0].startswith(says)
    if mode == "hybrid":
        assert "(0.3 : 0.7)" in lines[0]
