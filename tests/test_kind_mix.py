"""Question kinds: bench/kind_ablation.py trains each arm on the kinds it names, for the same steps, and scores it on
a finished run's files."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from ragtune.records import Page, Pair, read_jsonl
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

    pairs = read_jsonl(tiny_run / "work" / "pairs_train.jsonl", Pair)
    pairs += read_jsonl(tiny_run / "work" / "pairs_lexical.jsonl", Pair)
    by_kind = {k: sum(p.kind == k for p in pairs) for k in kind_ablation.TRAINED_KINDS}
    assert by_kind["cloze"] and by_kind["lexical"], by_kind
    out = tmp_path / "ablation.json"
    argv = ["kind_ablation", str(tiny_run), "--bench", str(_bench_file(tmp_path / "b.csv", tiny_run))]
    monkeypatch.setattr(sys, "argv", [*argv, "--steps", "1", "--arms", "base,all,seeds,loo", "--json", str(out)])
    assert kind_ablation.main() == 0
    results = json.loads(out.read_text())
    present = [k for k, n in by_kind.items() if n]
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
        assert len(arm["bench found"]) == 2 and len(arm["held-out found"]) == arm_questions(tiny_run)


def arm_questions(run: Path) -> int:
    return len(read_jsonl(run / "work" / "pairs_test.jsonl", Pair))
