"""The forgetting guard: the general retrieval set that ships in the package, the guard firing on a real
MiniLM that junk training made worse (and not on one trained on real pairs), and a run recording it."""

from __future__ import annotations

import copy
import json
import random
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

from ragtune import Config
from ragtune.records import Chunk, Page, Pair
from ragtune.training.forgetting import GENERAL_DIR, TOLERANCE, general_figures, guard, load_general_set
from tests.conftest import REPO
from tests.support.runs import good_docs, run_args


def test_the_general_set_ships_in_the_package_and_is_consistent() -> None:
    general = load_general_set()
    assert 200 <= len(general.queries) <= 400 and len(general.ids) == len(set(general.ids))
    assert set(general.relevant) <= set(general.ids)
    # Every passage is asked about, and no question is a sentence copied out of its passage.
    assert set(general.relevant) == set(general.ids)
    text = dict(zip(general.ids, general.texts))
    for q, pid in zip(general.queries, general.relevant):
        assert q.strip("?").lower() not in text[pid].lower(), q
    # pyproject's package-data carries every file of the set into the wheel.
    # (tomllib is Python 3.11+; ragtune supports 3.10.)
    line = re.search(r"^ragtune = (\[.*\])$", (REPO / "pyproject.toml").read_text(), re.M)
    globs = json.loads(line.group(1))
    for f in GENERAL_DIR.iterdir():
        rel = f.relative_to(REPO / "ragtune").as_posix()
        assert any(fnmatch(rel, g) for g in globs), rel


@pytest.fixture(scope="module")
def minilm():
    from sentence_transformers import SentenceTransformer

    from ragtune.models import bundled_model_path

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    model.max_seq_length = 64  # the general passages are under 64 words; short rows keep training quick
    return model


def _train(model, pairs: list[Pair], chunks: dict[str, Chunk], learning_rate: float, work: Path):
    from ragtune.training.trainer import fine_tune

    tuned = copy.deepcopy(model)
    cfg = Config(docs=Path("d"), max_steps=2, batch_size=8, learning_rate=learning_rate, device="cpu", wise=False)
    fine_tune(tuned, pairs, chunks, cfg, work, "cpu")
    return tuned


def test_the_guard_fires_when_junk_training_wrecks_general_retrieval_and_mixes_back(minilm, tmp_path) -> None:
    # Junk: strings of call-sign words paired with unrelated strings of them, at a high learning rate.
    rng = random.Random(0)
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()
    chunks = {
        f"c{i}": Chunk(id=f"c{i}", source="d", pages=(1,), text=" ".join(rng.choices(words, k=30)), n_tokens=40)
        for i in range(64)
    }
    pairs = [Pair(" ".join(rng.choices(words, k=6)), f"c{rng.randrange(64)}", "junk") for _ in range(64)]
    tuned = _train(minilm, pairs, chunks, 2e-3, tmp_path / "work")
    general = load_general_set()
    record = guard(tuned, minilm, general)
    before, trained, after = record["base"], record["trained"], record["fine_tuned"]
    assert record["fired"] and record["acted"], record
    assert before["mrr@10"] - trained["mrr@10"] > TOLERANCE
    # It mixed back until general retrieval no longer fell, and the model now holds those weights.
    assert record["kept"] < 1.0
    assert before["mrr@10"] - after["mrr@10"] <= TOLERANCE and before["hit@5"] - after["hit@5"] <= TOLERANCE
    assert general_figures(tuned, general) == after
    # Without leave to act (--no-wise) it only says so, and leaves the weights alone.
    again = _train(minilm, pairs, chunks, 2e-3, tmp_path / "again")
    measured = guard(again, minilm, general, act=False)
    assert measured["fired"] and not measured["acted"] and measured["kept"] == 1.0
    assert general_figures(again, general) == measured["trained"]


def test_the_guard_does_not_fire_when_training_on_real_pairs_keeps_general_retrieval(
    minilm, tmp_path, nist_pages: list[Page]
) -> None:
    # Real pairs: 60-word windows of NIST prose, each asked for by a phrase of its own, at the default learning rate.
    words = " ".join(page.text for page in nist_pages[4:12]).split()
    windows = [" ".join(words[i : i + 60]) for i in range(0, len(words) - 60, 60)][:32]
    chunks = {f"c{i}": Chunk(id=f"c{i}", source="nist", pages=(1,), text=t, n_tokens=64) for i, t in enumerate(windows)}
    pairs = [Pair(" ".join(c.text.split()[10:22]), c.id, "phrase") for c in chunks.values()]
    assert len(pairs) >= 16
    tuned = _train(minilm, pairs, chunks, Config(docs=Path("d")).learning_rate, tmp_path / "work")
    state = {k: v.clone() for k, v in tuned.state_dict().items()}
    record = guard(tuned, minilm, load_general_set().with_distractors(windows))
    assert not record["fired"] and not record["acted"] and record["kept"] == 1.0, record
    assert record["fine_tuned"] == record["trained"]
    assert all((state[k] == v).all() for k, v in tuned.state_dict().items())


def test_a_run_records_the_guard_in_metrics_report_and_console(
    tmp_path, tiny_model_dir, nist_pages, capsys, monkeypatch
) -> None:
    from ragtune.cli import main

    docs = good_docs(tmp_path / "docs", nist_pages)
    out = tmp_path / "run"
    # --wise (leave to act), and a tolerance no model meets: the guard fires and mixes all the way back.
    monkeypatch.setattr("ragtune.training.forgetting.TOLERANCE", -1.0)
    argv = [a for a in run_args(docs, out, tiny_model_dir) if a != "--no-wise"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    general = metrics["general"]
    assert general["fired"] and general["acted"] and general["kept"] == 0.0
    assert general["n_questions"] == len(load_general_set().queries)
    assert general["fine_tuned"] == general["base"]
    line = next(x for x in printed.splitlines() if x.startswith("FORGETTING"))
    assert "model/ holds the base model" in line and line in (out / "report.md").read_text()
    # model/ holds the base weights: nothing the run measures moved.
    assert metrics["fine_tuned"] == metrics["base"] and not metrics["improved"]


def test_offline_questions_are_never_rows_of_a_table() -> None:
    # Issue 28: table debris asked as cloze questions ("Operating leases Long-term operating lease liabilities 2, 2,").
    from ragtune.generators.offline import OfflineGenerator

    prose = (
        "Operating leases are contracts that let a company use an asset without owning it. "
        "Lease liabilities are measured at the present value of the remaining payments. "
        # Rows as extraction leaves them: a label and the first digits of each column.
        "Operating leases Long-term operating lease liabilities and right-of-use assets 2, 2, 1 "
        "Finance leases Short-term lease cost and variable lease cost recognised 4 3 (1) 7. "
        "As of December 31, 2023, revenue grew 12 percent, driven by higher prices for cloud services."
    )
    chunks = [
        Chunk(id=f"c{i}", source="10-K", pages=(i,), text=prose + f" Segment {i} reports its own figures.", n_tokens=90)
        for i in range(2)
    ]
    questions = [p.query for p in OfflineGenerator(questions_per_chunk=6).generate(chunks, random.Random(0))]
    assert questions
    debris = [q for q in questions if "lease liabilities and right" in q or "cost recognised" in q]
    assert debris == []
    # Prose that cites a figure is still asked about.
    assert any("December 31, 2023" in q for q in questions), questions
