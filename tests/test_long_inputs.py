"""Long inputs: windows of neighbouring chunks as training positives, the batches that keep them apart,
and the max_seq_length the saved model reads (ragtune.training.long_inputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.chunk import chunk_pages
from ragtune.config import Config
from ragtune.errors import ConfigError
from ragtune.records import Chunk, Page, Pair
from ragtune.training.long_inputs import KeepApartBatchSampler, long_windows, text_tags, with_long_rows
from ragtune.training.trainer import training_rows
from tests.support.runs import finished_tiny_run, good_docs


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def two_docs(nist_pages: list[Page], tiny_model) -> tuple[list[Chunk], dict[str, str]]:
    """Real chunks (48 tokens, 8 of overlap) of two documents, and each document's text."""
    pages = [Page("a.pdf", p.page, p.text) for p in nist_pages[4:6]] + [
        Page("b.pdf", p.page, p.text) for p in nist_pages[8:10]
    ]
    chunks = chunk_pages(pages, tiny_model.tokenizer, 48, 8, 126).chunks
    docs = {s: "\n\n".join(p.text for p in pages if p.source == s) for s in ("a.pdf", "b.pdf")}
    return chunks, docs


def test_windows_hold_only_allowed_neighbours_of_the_same_document_and_fit_the_limit(two_docs, tiny_model) -> None:
    chunks, docs = two_docs
    a = [c for c in chunks if c.source == "a.pdf"]
    b = [c for c in chunks if c.source == "b.pdf"]
    assert len(a) >= 6 and len(b) >= 6
    held = {a[3].id, b[0].id}  # held-out chunks: never inside a window
    allowed = {c.id for c in chunks} - held
    windows = long_windows(chunks, allowed, {c.id for c in chunks}, tiny_model.tokenizer, 120)
    position = {c.id: i for i, c in enumerate(chunks)}
    source = {c.id: c.source for c in chunks}
    assert windows, "no window was built"
    for cid, w in windows.items():
        assert cid in w.chunk_ids and len(w.chunk_ids) > 1
        assert not held & set(w.chunk_ids)
        assert {source[i] for i in w.chunk_ids} == {source[cid]}
        # Neighbours in document order, without a gap.
        spots = [position[i] for i in w.chunk_ids]
        assert spots == list(range(spots[0], spots[0] + len(spots)))
        # Never longer than the limit, measured again by the real tokenizer.
        assert len(tiny_model.tokenizer(w.text, add_special_tokens=False)["input_ids"]) <= 120
        # One stretch of its document: the chunks' overlap is written once.
        assert _norm(w.text) in _norm(docs[source[cid]])
        assert _norm(next(c.text for c in chunks if c.id == cid)) in _norm(w.text)
    # The chunk next to a held-out one grows away from it only.
    assert windows[a[2].id].chunk_ids[-1] == a[2].id
    assert windows[b[1].id].chunk_ids[0] == b[1].id
    # Held-out chunks and chunks not asked for get no window.
    assert not held & set(windows)
    assert max(w.n_tokens for w in windows.values()) > 100, "windows should fill up toward the limit"


def test_a_chunk_without_allowed_neighbours_gets_no_window(two_docs, tiny_model) -> None:
    chunks, _ = two_docs
    lone = chunks[1]
    allowed = {lone.id}
    assert long_windows(chunks, allowed, {lone.id}, tiny_model.tokenizer, 120) == {}


def _rows(chunks: list[Chunk], n_questions: int = 8) -> dict[str, list[str]]:
    pairs = [Pair(f"question {i} about {c.id}", c.id, "offline") for c in chunks for i in range(n_questions)]
    return training_rows(pairs, {c.id: c for c in chunks}, 4)


def test_batches_never_hold_a_window_beside_a_row_of_a_chunk_inside_it(two_docs, tiny_model) -> None:
    from datasets import Dataset

    chunks, _ = two_docs
    by_id = {c.id: c for c in chunks}
    windows = long_windows(chunks, set(by_id), set(by_id), tiny_model.tokenizer, 120)
    rows, sampler_factory = with_long_rows(_rows(chunks), by_id, windows, 0.5, seed=0)
    long_texts = {w.text for w in windows.values()}
    n_long = sum(t in long_texts for t in rows["chunk"])
    assert n_long == round(0.5 * len(rows["chunk"]))
    dataset = Dataset.from_dict(rows)
    sampler = sampler_factory(dataset, batch_size=8, drop_last=False, valid_label_columns=None, generator=None, seed=3)
    tags = text_tags(by_id, windows)
    seen = []
    for batch in sampler:
        positives = [rows["chunk"][i] for i in batch]
        # Long windows train in batches of their own: no chunk is padded to a window's length.
        assert len({p in long_texts for p in positives}) == 1
        covered = [set(tags[p]) for p in positives]
        for i in range(len(covered)):
            for j in range(i + 1, len(covered)):
                assert not covered[i] & covered[j], "two rows of one batch cover the same chunk"
        seen += batch
    assert sorted(seen) == list(range(len(rows["chunk"]))), "every row once an epoch"
    assert len(sampler) >= len(list(sampler)) - 2


def test_the_sampler_keeps_the_no_duplicates_rule_for_rows_without_windows() -> None:
    from datasets import Dataset

    data = Dataset.from_dict({"sentence1": ["x", "x", "y", "z"], "sentence2": ["p", "q", "r", "p"]})
    sampler = KeepApartBatchSampler(data, 4, False, tags={}, long=frozenset(), seed=0)
    for batch in sampler:
        values = [v for i in batch for v in (data[i]["sentence1"], data[i]["sentence2"])]
        assert len(values) == len(set(values))


def test_long_inputs_is_a_validated_share() -> None:
    assert Config(docs=Path("d"), long_inputs=0.15).long_inputs == 0.15
    with pytest.raises(ConfigError, match="long_inputs"):
        Config(docs=Path("d"), long_inputs=0.9)


@pytest.mark.parametrize("share", [0.5, 0.0])
def test_the_saved_model_reads_its_position_limit_and_loads_with_it(
    tmp_path: Path, nist_pages: list[Page], tiny_model_dir: Path, share: float
) -> None:
    from sentence_transformers import SentenceTransformer

    from ragtune.models import max_positions

    docs = good_docs(tmp_path / "docs", nist_pages)
    run = finished_tiny_run(tmp_path, docs, tiny_model_dir, long_inputs=share)
    limit = max_positions(SentenceTransformer(str(tiny_model_dir)))
    assert limit == 130  # the tiny model's positions (below 512, so they set the length)
    manifest = json.loads((run / "work" / "manifest.json").read_text())
    train = manifest["stages"]["train"]
    assert train["saved_max_seq_length"] == limit
    assert (train["long_windows"] > 0) == (share > 0)
    # Written by sentence-transformers itself: 6.x keeps the length in the tokenizer's config.
    saved = {
        json.loads((run / "model" / name).read_text()).get(key)
        for name, key in (
            ("sentence_bert_config.json", "max_seq_length"),
            ("tokenizer_config.json", "model_max_length"),
        )
    }
    assert limit in saved
    assert SentenceTransformer(str(run / "model")).max_seq_length == limit
    # The run's own evaluation still read its chunks at the chunk stage's length.
    index = json.loads((run / "index" / "retriever.json").read_text())
    assert index["max_seq_length"] == manifest["stages"]["chunk"]["max_seq_length"] < limit
    assert f"| max sequence length | {limit} tokens |" in (run / "model" / "README.md").read_text()
