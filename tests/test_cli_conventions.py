"""What a user types and reads (issue 31): the base-vector cache of `search --compare`, readable objects and
scores that say what they are, `search` output, CLI conventions, and errors in the words the user typed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragtune import Config, Pipeline
from ragtune.cli import main
from tests.test_search import QUERY, encoded_texts, write_pdfs


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Path]:
    """A tiny run whose chunks (128 tokens) made it raise the model's max_seq_length from 128 to 130,
    saved by sentence-transformers 6, which keeps that length out of sentence_bert_config.json."""
    root = tmp_path_factory.mktemp("conventions")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(root / "hf_home"))
        cfg = Config(docs=write_pdfs(root / "docs"), out=root / "run", base_model=str(tiny_model_dir), max_steps=2,
                     batch_size=4, chunk_tokens=128, chunk_overlap=8, device="cpu", val_fraction=0)
        Pipeline(cfg).run()
        yield cfg.out


# --- 1. the base-vector cache of search --compare ----------------------------------------


def test_search_compare_reuses_the_saved_base_vectors_after_a_raised_max_seq_length(
        long_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from ragtune.retrieval import BASE_VECTORS

    about = json.loads((long_run / BASE_VECTORS / "about.json").read_text())
    assert about["max_seq_length"] == 130, "the fixture must raise the model's length to fit its chunks"
    st_config = json.loads((long_run / "model" / "sentence_bert_config.json").read_text())
    assert "max_seq_length" not in st_config, "the fixture must be a sentence-transformers 6 save"
    for _ in range(2):
        seen = encoded_texts(monkeypatch)
        assert main(["search", str(long_run), QUERY, "-k", "3", "--compare", "--device", "cpu"]) == 0
        # Only the query, once per model: the corpus comes from the vectors the evaluate stage saved.
        assert seen == [QUERY, QUERY], f"{len(seen)} texts encoded"
        monkeypatch.undo()
    capsys.readouterr()


def test_both_stages_key_the_base_vectors_with_one_function() -> None:
    import ragtune.search
    import ragtune.stages.evaluate
    from ragtune.retrieval import base_vectors_about

    assert ragtune.search.base_vectors_about is base_vectors_about
    assert ragtune.stages.evaluate.base_vectors_about is base_vectors_about


def test_a_run_whose_index_did_not_record_the_length_reads_it_from_the_saved_model(
        long_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from ragtune.search import load_retriever

    copy = tmp_path / "run"
    shutil.copytree(long_run, copy)
    settings = json.loads((copy / "index" / "retriever.json").read_text())
    (copy / "index" / "retriever.json").write_text(json.dumps({k: v for k, v in settings.items()
                                                               if k != "max_seq_length"}))
    seen = encoded_texts(monkeypatch)
    base = load_retriever(copy, "base", device="cpu")
    assert base.model.max_seq_length == 130 and seen == []
