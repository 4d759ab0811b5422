"""Question kinds: bench/kind_ablation.py trains each arm on the kinds it names, for the same steps, and scores it on
a finished run's files."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

from ragtune.names import QUESTION_KINDS
from ragtune.records import Page, Pair, read_jsonl, write_jsonl
from tests.support.runs import finished_tiny_run, good_docs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, nist_pages: list[Page]) -> Path:
    root = tmp_path_factory.mktemp("kinds")
    return finished_tiny_run(root, good_docs(root / "docs", nist_pages), tiny_model_dir)


def _bench_file(path: Path, run: Path) -> Path:
    """Two third-party-style questions whose contexts are runs of 40 words of the run's own pages."""
    pages = read_jsonl(run / "work" / "pages.jsonl", Page)
    contexts = [" ".join(p.text.split()[20:60]) for p in pages[:2]]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["question", "contexts"])
        w.writeheader()
        for i, ctx in enumerate(contexts):
            w.writerow({"question": f"What does part {i} say about risks?", "contexts": repr([ctx])})
    return path


def test_the_ablation_trains_each_arm_on_its_kinds_only(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import kind_ablation

    # A filing's run also trains on figure questions: give this run two, so that every kind it has is an arm.
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    train = read_jsonl(run / "work" / "pairs_train.jsonl", Pair)
    figures = [
        Pair(f"What were the total net sales in {y}?", train[0].chunk_id, "offline", "figure") for y in (2021, 2022)
    ]
    write_jsonl(run / "work" / "pairs_train.jsonl", train + figures, Pair)
    pairs = read_jsonl(run / "work" / "pairs_train.jsonl", Pair)
    pairs += read_jsonl(run / "work" / "pairs_lexical.jsonl", Pair)
    by_kind = Counter(p.kind for p in pairs)
    assert by_kind["cloze"] and by_kind["lexical"] and by_kind["figure"] == 2, by_kind
    out = tmp_path / "ablation.json"
    argv = ["kind_ablation", str(run), "--bench", str(_bench_file(tmp_path / "b.csv", run))]
    monkeypatch.setattr(sys, "argv", [*argv, "--steps", "1", "--arms", "base,all,seeds,loo", "--json", str(out)])
    assert kind_ablation.main() == 0
    results = json.loads(out.read_text())
    present = [k for k in QUESTION_KINDS if by_kind[k]]
    assert list(results) == [
        "base (untrained)",
        "all kinds, seed 13",
        "all kinds, seed 14",
        *(f"all but {k}" for k in present),
    ]
    assert results["base (untrained)"]["n_pairs"] == 0
    assert results["all kinds, seed 13"]["n_pairs"] == len(pairs)
    for k in present:
        assert results[f"all but {k}"]["n_pairs"] == len(pairs) - by_kind[k]
        assert k not in results[f"all but {k}"]["kinds"]
    for arm in results.values():
        # Bench one vector and passages, held-out one vector (passages only with --held-out-passages).
        assert {"bench", "bench passages", "held-out"} <= arm.keys() and "held-out passages" not in arm
        assert len(arm["bench found"]) == 2 and len(arm["held-out found"]) == arm_questions(run)


def arm_questions(run: Path) -> int:
    return len(read_jsonl(run / "work" / "pairs_test.jsonl", Pair))
