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
    """A summary shaped like Pipeline._summary's, for a run over the NIST PDF and a notes folder."""
    cfg = Config(docs=Path("/home/alice/corpus/docs"), out=Path("/home/alice/runs/nist"), base_model=base_model,
                 batch_size=16, epochs=2.0, learning_rate=2e-5, max_steps=-1, themes_file=Path(themes_file) if themes_file else None)
    return {
        "config": cfg.to_dict() | {"docs": "docs", "out": "nist"},
        "files": ["nist_ai_600_1.pdf", "notes/zero_trust.md"],
        "n_pages": 65,
        "n_chunks": 338,
        "max_seq_length": 256,
        "themes": "generative AI (201), risk management (150), safety (88); 12 chunks unthemed",
        "n_pairs": 1311,
        "n_train": 1049,
        "n_eval": 262,
        "n_eval_chunks": 68,
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
        "before": before,
        "after": after,
        "bm25": {"hit@1": 0.4, "hit@3": 0.5, "hit@5": bm25_hit5, "hit@10": 0.6, "mrr@10": 0.45},
        "improved": improved,
        "n_queries": 262,
        "n_chunks": 338,
        "eval_set": "held-out synthetic questions (by chunk)",
    }


def front_matter(card: str) -> dict[str, Any]:
    m = re.match(r"\A---\n(.*?)\n---\n", card, flags=re.DOTALL)
    assert m, card[:200]
    data = yaml.safe_load(m.group(1))
    assert isinstance(data, dict)
    return data


NUM = r"\d+\.\d{3}"
VERDICTS = "|".join(re.escape(v) for v in [
    "The fine-tuned model beats the base model.",
    "**The fine-tuned model did not beat the base model on these questions.**",
])
CARD_PATTERN = re.compile(
    r"""---
(?:base_model: (?P<base>\S+)
)?library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags:
(?:  - [\w-]+
)+model-index:
- name: (?P<name>\S+)
  results:
  - task:
      type: information-retrieval
      name: Information Retrieval
    dataset:
      type: ragtune-synthetic-heldout
      name: held-out synthetic questions
    metrics:
(?:    - type: (?:hit|mrr)_at_\d+
      value: \d\.\d{4}
      name: (?:hit|mrr)@\d+
){5}---

# (?P=name)

A sentence-transformers embedding model fine-tuned by \[ragtune\]\(https://pypi\.org/project/ragtune/\) from
(?P<label>.+) for retrieval over a specific document collection\.

## Training data

- Documents: nist_ai_600_1\.pdf, notes/zero_trust\.md \(65 pages\)
- Chunks: 338 \(up to \d+ tokens, overlap \d+\)
- Themes: .+; \d+ chunks unthemed
- Questions: 1311 synthetic questions from the `(?:offline|template)` generator;
  1049 for training, 262 held out \(questions of 68 chunks that were never trained on\)

## Retrieval on held-out questions

Exact FAISS inner-product search over all 338 chunks, the same index settings before and after\.
(?P<verdict>VERDICTS)

\| retriever \| hit@1 \| hit@3 \| hit@5 \| hit@10 \| mrr@10 \|
\|---\|(?:---:\|){5}
\| base \|(?: NUM \|){5}
\| fine-tuned \|(?: NUM \|){5}
\| BM25 \|(?: NUM \|){5}

## Training settings

\| setting \| value \|
\|---\|---\|
\| loss \| MultipleNegativesRankingLoss over rows of one chunk and \d+ of its questions \(no-duplicates batches\) \|
\| questions \| \d+ per chunk from the `\w+` generator, and \d+ BM25-labelled spans per training chunk \(lexical distillation\) \|
\| hard negatives \| (?:one per chunk, mined with the base model|none \(in-batch negatives only\)) \|
\| epochs \| 2\.0 \|
\| batch size \| 16 chunks \|
\| learning rate \| 2e-05 \|
\| warmup ratio \| 0\.1 \|
\| weight decay \| 0\.01 \|
\| steps \| 132 \|
\| seed \| 13 \|
\| max sequence length \| 256 \|

## Usage

sentence-transformers:

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer\("(?P<load>[^"]+)"\)
embeddings = model\.encode\(\[".+"\], normalize_embeddings=True\)
```

LangChain:

```python
from langchain_huggingface import HuggingFaceEmbeddings

embeddings = HuggingFaceEmbeddings\(model_name="(?P=load)", encode_kwargs=\{"normalize_embeddings": True\}\)
```

LlamaIndex:

```python
from llama_index\.embeddings\.huggingface import HuggingFaceEmbedding

embed_model = HuggingFaceEmbedding\(model_name="(?P=load)"\)
```
""".replace("NUM", NUM).replace("VERDICTS", VERDICTS)
)

# An absolute POSIX or Windows path anywhere in the text (URLs are fine).
ABSOLUTE_PATH = re.compile(r"(?:^|[\s(\"'`=:])(?:/(?!/)[\w.-]+/|~/|[A-Za-z]:[\\/])", flags=re.MULTILINE)


@pytest.fixture
def local_base(tmp_path: Path) -> Path:
    base = tmp_path / "models" / "my-base"
    base.mkdir(parents=True)
    return base


@pytest.mark.parametrize("improved", [True, False])
@pytest.mark.parametrize("repo_id", [None, "alice/nist-minilm"])
def test_card_matches_the_template(improved: bool, repo_id: str | None) -> None:
    card = render_card(make_summary(""), make_metrics(improved), repo_id)
    m = CARD_PATTERN.fullmatch(card)
    assert m, card
    assert m["base"] == BUNDLED_ID
    assert m["name"] == (repo_id or "ragtune-model")
    assert m["load"] == (repo_id or "path/to/run/model")
    assert m["label"] == BUNDLED_ID
    assert ("did not beat" in m["verdict"]) is (not improved)


@pytest.mark.parametrize(
    ("old", "new"),
    [("pipeline_tag: sentence-similarity\n", ""), ("| seed | 13 |", "| seed |  |"), ("```\n", "```\nextra\n"),
     ("(65 pages)", "(65 pages, 3 skipped)")],
)
def test_template_rejects_altered_cards(old: str, new: str) -> None:
    # The whole-card pattern is strict enough to fail.
    card = render_card(make_summary(""), make_metrics(True))
    assert CARD_PATTERN.fullmatch(card)
    assert old in card
    assert not CARD_PATTERN.fullmatch(card.replace(old, new, 1))


def test_front_matter_parses_with_the_hub_fields() -> None:
    metrics = make_metrics(True)
    data = front_matter(render_card(make_summary(""), metrics, "alice/nist-minilm"))
    assert data["base_model"] == BUNDLED_ID
    assert data["library_name"] == "sentence-transformers"
    assert data["pipeline_tag"] == "sentence-similarity"
    assert "ragtune" in data["tags"] and "sentence-transformers" in data["tags"]
    [entry] = data["model-index"]
    assert entry["name"] == "alice/nist-minilm"
    [result] = entry["results"]
    assert result["task"]["type"] == "information-retrieval"
    # The reported numbers are the fine-tuned model's, to 4 decimals.
    got = {m["name"]: m["value"] for m in result["metrics"]}
    assert list(got) == METRIC_KEYS
    for k in METRIC_KEYS:
        assert got[k] == pytest.approx(metrics["after"][k], abs=5e-5)
    assert {m["type"] for m in result["metrics"]} == {"hit_at_1", "hit_at_3", "hit_at_5", "hit_at_10", "mrr_at_10"}


@pytest.mark.parametrize(
    ("base_model", "expected"),
    [("", BUNDLED_ID), ("BAAI/bge-small-en-v1.5", "BAAI/bge-small-en-v1.5"), ("bundled", BUNDLED_ID)],
)
def test_base_model_is_cited_by_hub_id(base_model: str, expected: str) -> None:
    if base_model == "bundled":
        base_model = str(bundled_model_path())
    card = render_card(make_summary(base_model), make_metrics(True))
    assert front_matter(card)["base_model"] == expected
    assert CARD_PATTERN.fullmatch(card)["label"] == expected  # type: ignore[index]
    assert not ABSOLUTE_PATH.search(card)


def test_local_base_model_is_not_leaked_as_a_path(local_base: Path, tmp_path: Path) -> None:
    summary = make_summary(str(local_base), themes_file=str(tmp_path / "themes.yaml"))
    card = render_card(summary, make_metrics(True))
    report = render_report(summary, make_metrics(True))
    # A local folder has no Hub id: no base_model key rather than a path.
    assert "base_model" not in front_matter(card)
    m = CARD_PATTERN.fullmatch(card)
    assert m and m["base"] is None
    assert m["label"] == "a local model (my-base)"
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
        "- files: nist_ai_600_1.pdf, notes/zero_trust.md",
        "- n_pages: 65",
        "- n_chunks: 338",
        "- n_pairs: 1311",
        "- n_train: 1049",
        "- n_eval: 262",
        "- n_eval_chunks: 68",
        "- extract: line of undecodable glyph codes (font without a Unicode map) dropped: 11",
        "- chunk: chunk too short: 3",
        "- chunk: duplicate chunk text: 2",
    ]:
        assert line in report.splitlines()
    assert "- nothing" not in report


def test_report_with_nothing_skipped() -> None:
    summary = make_summary("")
    summary["skipped"] = {"extract": {}, "chunk": {}, "generate": {}}
    assert "## Skipped or dropped\n\n- nothing\n" in render_report(summary, make_metrics(True))


@pytest.mark.parametrize(
    ("hybrid", "recommended"),
    [((0.75, 0.6), True), ((0.69466, 0.5321), False), ((0.75, 0.5), False), ((0.6, 0.6), False)],
)
def test_report_recommends_hybrid_only_when_it_wins_on_both_metrics(hybrid: tuple[float, float],
                                                                    recommended: bool) -> None:
    metrics = make_metrics(True)
    metrics["hybrid"] = {"hit@1": 0.5, "hit@3": 0.6, "hit@5": hybrid[0], "hit@10": 0.8, "mrr@10": hybrid[1]}
    report = render_report(make_summary(""), metrics)
    assert "| hybrid, fine-tuned + BM25 |" in report
    assert ("Recommendation: use hybrid retrieval" in report) is recommended


def test_report_says_when_bm25_alone_wins() -> None:
    report = render_report(make_summary(""), make_metrics(True, bm25_hit5=0.9) | {
        "bm25": {"hit@1": 0.5, "hit@3": 0.8, "hit@5": 0.9, "hit@10": 0.95, "mrr@10": 0.7}})
    assert "BM25 alone beats the fine-tuned model on these held-out questions." in report
