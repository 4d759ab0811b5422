"""The bench scripts run as `python -m bench.NAME`: every such command in the docs names a script that exists, and
no script sets up sys.path or imports another script (what they share is in bench/common.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name not in ("__init__.py", "common.py"))
DOCS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]


def test_every_bench_command_in_the_docs_names_a_script() -> None:
    commands = [
        (doc.name, name)
        for doc in DOCS
        for name in re.findall(r"python3? -m bench\.([a-z_]+)", doc.read_text(encoding="utf-8"))
    ]
    assert commands, "no `python -m bench.NAME` command found in the docs"
    missing = [(doc, name) for doc, name in commands if not (BENCH / f"{name}.py").is_file()]
    assert missing == []


def test_no_doc_runs_a_bench_script_by_its_path() -> None:
    # `python bench/x.py` would import ragtune from wherever Python finds it, not from this checkout.
    by_path = [(doc.name, m) for doc in DOCS for m in re.findall(r"python3? bench/\w+\.py", doc.read_text("utf-8"))]
    assert by_path == []


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_a_bench_script_imports_only_common_and_touches_no_sys_path(script: Path) -> None:
    tree = ast.parse(script.read_text(encoding="utf-8"))
    siblings = {p.stem for p in SCRIPTS} | {"common"}
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & siblings, "import bench.common, never a script by its bare name"
    assert not {m for m in imported if m.startswith("bench.")} - {"bench.common"}
    assert "sys.path" not in script.read_text(encoding="utf-8")


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_a_bench_script_imports(script: Path) -> None:
    # A module of ragtune renamed or moved must not leave a bench script that fails at its first line.
    import importlib

    module = importlib.import_module(f"bench.{script.stem}")
    assert callable(getattr(module, "main", None))


def test_the_misses_of_the_single_vector_are_counted_per_retriever_and_together() -> None:
    from bench.shared_bench import missed_at_5

    relevant = [{"a"}, {"b"}, {"c"}, {"d"}]
    rankings = {
        "fine-tuned": [["a"], ["x"], ["x"], ["x"]],  # misses questions 1, 2 and 3
        "BM25": [["x"], ["b"], ["x"], ["x"]],
        "hybrid": [["x"], ["x", "y", "z", "w", "v", "c"], ["c"], ["x"]],  # "c" at 6 is no hit at 5
    }
    assert missed_at_5(rankings, relevant, "fine-tuned") == {"missed": 3, "BM25": 1, "hybrid": 1, "any": 2}


def _topic_bench() -> tuple[list, list[tuple[str, list[str]]]]:
    """Twelve chunks, one per power source, and a question naming each one's source, with the chunk's text as its
    context: each source's words stand in its chunk only, so BM25 finds every question."""
    from ragtune.records import Chunk

    topics = "solar wind tides coal gas oil water heat steam wood peat uranium".split()
    texts = [
        f"Notes on {t} power, part {i}: " + " ".join(f"{t}{j} plant{i}x{j}" for j in range(30))
        for i, t in enumerate(topics)
    ]
    chunks = [Chunk(f"doc#{i}", "doc", (), text, 0) for i, text in enumerate(texts)]
    return chunks, [(f"What is said of {t} power?", [text]) for t, text in zip(topics, texts)]


def test_the_misses_are_the_bases_when_only_the_base_is_scored(tiny_model) -> None:
    # `shared_bench --base-only --misses` on a run still training: the base's single vector is the row missed.
    from bench.shared_bench import score_bench

    chunks, bench = _topic_bench()
    missed: dict[str, int] = {}
    results, n = score_bench(chunks, bench, {"base": tiny_model}, 0, misses=missed)
    assert n == len(chunks)
    # The untrained tiny model misses some; each question names its topic, which only its chunk has: BM25 finds it.
    assert 0 < missed["missed"] == round(n * (1 - results["base"]["hit@5"])), (missed, results["base"])
    assert missed["BM25"] == missed["any"] == missed["missed"], missed


def test_each_fusion_scale_keeps_each_list_s_order_at_its_ends(tiny_model) -> None:
    # A scale only puts the two scores on one footing: at share 1.0 the hybrid is the model alone, at 0.0 BM25 alone.
    from bench.fusion_scales import SCALES, retrievers, scale_table

    chunks, bench = _topic_bench()
    questions, relevant = [q for q, _ in bench], [{c.id} for c in chunks]
    indexes = retrievers(tiny_model, {"passage_words": 0}, chunks)
    table = scale_table(tiny_model, indexes, questions, relevant, [0.0, 1.0])
    for name in SCALES:
        assert table[f"{name} 1"] == table["model"], name
        assert table[f"{name} 0"] == table["BM25"], name
    assert table["BM25"] != table["model"]
