"""Searching a finished run, `search --compare`, and LlamaIndex dataset export, import and evaluation."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ragtune.cli import main
from ragtune.errors import DatasetError
from ragtune.llamaindex_dataset import (
    add_dataset_metrics,
    evaluate_dataset,
    evaluate_on_dataset,
    export_llamaindex,
    load_llamaindex_dataset,
)
from ragtune.records import Chunk, Page, Pair, RunDirError, read_jsonl
from ragtune.search import Retriever, load_retriever, search
from tests.conftest import NIST_PDF
from tests.support.runs import finished_tiny_run
from tests.test_cli import assert_one_error_line
from tests.test_evaluate import KeywordEncoder

QUERY = "What are the risks of generative AI?"
# Two small PDFs cut from NIST AI 600-1 (about 2,400 words), so hits carry real page numbers.
PDFS = {"a.pdf": [4, 5, 6], "b.pdf": [7, 8]}


def write_pdfs(folder: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    folder.mkdir(parents=True)
    reader = PdfReader(NIST_PDF)
    for name, indices in PDFS.items():
        writer = PdfWriter()
        for i in indices:
            writer.add_page(reader.pages[i])
        with (folder / name).open("wb") as f:
            writer.write(f)
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """One finished tiny run (2 training steps), shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("search")
    return finished_tiny_run(root, write_pdfs(root / "docs"), tiny_model_dir)


@pytest.fixture(scope="module")
def chunks(run_dir: Path) -> list[Chunk]:
    return read_jsonl(run_dir / "index" / "chunks.jsonl", Chunk)


@pytest.fixture(scope="module")
def tuned(run_dir: Path) -> Retriever:
    return load_retriever(run_dir, "tuned", device="cpu")


@pytest.fixture(scope="module")
def base(run_dir: Path) -> Retriever:
    return load_retriever(run_dir, "base", device="cpu")


# --- search ---------------------------------------------------------------------------


def test_search_returns_k_hits_best_first(run_dir: Path, chunks: list[Chunk]) -> None:
    hits = search(run_dir, QUERY, k=5, device="cpu")
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 + 1e-6 for s in scores)
    by_id = {c.id: c for c in chunks}
    page_text = {(p.source, p.page): p.text for p in read_jsonl(run_dir / "work" / "pages.jsonl", Page)}
    for h in hits:
        c = by_id[h.chunk_id]
        assert (h.source, h.pages, h.text) == (c.source, c.pages, c.text)
        assert h.source in PDFS and set(h.pages) <= set(range(1, len(PDFS[h.source]) + 1))
        # The hit's first words really are on its first page.
        assert " ".join(h.text.split()[:6]) in " ".join(page_text[h.source, h.pages[0]].split())


def test_k_beyond_the_index_gives_every_chunk_once(tuned: Retriever, chunks: list[Chunk]) -> None:
    everything = tuned.search(QUERY, k=len(chunks) + 10)
    assert sorted(h.chunk_id for h in everything) == sorted(c.id for c in chunks)
    assert [h.rank for h in everything] == list(range(1, len(chunks) + 1))


def test_chunk_text_as_query_finds_that_chunk(tuned: Retriever, chunks: list[Chunk]) -> None:
    from ragtune.retrieval import embed, passages_of

    for c in chunks[::10]:
        top = tuned.search(c.text, k=1, mode="dense")[0]
        assert top.chunk_id == c.id
        # Its own vector scores 1; blended with its best passage: (best + w * 1) / (1 + w).
        passages = passages_of(c.text, 20, stride=1)
        w = tuned.index.chunk_weight
        best = float((embed(tuned.model, passages) @ embed(tuned.model, [c.text])[0]).max()) if passages else None
        assert top.score == pytest.approx(1.0 if best is None else (best + w) / (1 + w), abs=1e-4)


def test_base_index_is_built_with_the_base_model(
    base: Retriever, run_dir: Path, chunks: list[Chunk], tiny_model
) -> None:
    expected = tiny_model.encode([c.text for c in chunks], normalize_embeddings=True, convert_to_numpy=True)
    # The evaluate stage encoded these in the run's training precision (bf16 on a CPU that has it): fp32's
    # vectors to within its rounding.
    np.testing.assert_allclose(base.index.index.reconstruct_n(0, len(chunks)), expected, atol=2e-3)
    # Built like the saved index: chunk rows first, then the same passages.
    assert base.index.owner.tolist() == np.load(run_dir / "index" / "rows.npy").tolist()
    assert base.index.index.ntotal > len(chunks)
    assert base.search(chunks[3].text, k=1, mode="dense")[0].chunk_id == chunks[3].id


def encoded_texts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text SentenceTransformer.encode is given from now on (it still encodes them)."""
    from sentence_transformers import SentenceTransformer

    seen: list[str] = []
    real = SentenceTransformer.encode

    def encode(self, sentences, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.extend([sentences] if isinstance(sentences, str) else sentences)
        return real(self, sentences, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode", encode)
    return seen


def test_base_index_reuses_the_vectors_of_the_evaluate_stage(
    run_dir: Path, base: Retriever, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragtune.retrieval import BASE_VECTORS

    assert (run_dir / BASE_VECTORS / "index.faiss").is_file()
    seen = encoded_texts(monkeypatch)
    cached = load_retriever(run_dir, "base", device="cpu")
    hits = cached.search(QUERY, k=5)
    assert seen == [QUERY], "the corpus was encoded again"
    assert [(h.chunk_id, round(h.score, 4)) for h in hits] == [
        (h.chunk_id, round(h.score, 4)) for h in base.search(QUERY, k=5)
    ]
    # Built again, the same vectors: the cache holds what encoding would give (the stage's bf16 within its
    # rounding of search's fp32).
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("base"))
    seen.clear()
    fresh = load_retriever(copy, "base", device="cpu")
    assert len(seen) == fresh.index.index.ntotal
    n = fresh.index.index.ntotal
    np.testing.assert_allclose(fresh.index.index.reconstruct_n(0, n), cached.index.index.reconstruct_n(0, n), atol=2e-3)


@pytest.mark.parametrize("change", ["chunk_text", "about", "weights", "damaged"])
def test_stale_or_damaged_base_vectors_are_encoded_again(
    run_dir: Path, tmp_path: Path, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragtune.retrieval import BASE_VECTORS

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    if change == "chunk_text":
        # A chunk edited after the run: its saved vector no longer belongs to it.
        path = copy / "index" / "chunks.jsonl"
        lines = path.read_text().splitlines()
        first = json.loads(lines[0])
        first["text"] = "Entirely different words about cooking pasta."
        path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    elif change == "about":
        about = json.loads((copy / BASE_VECTORS / "about.json").read_text())
        (copy / BASE_VECTORS / "about.json").write_text(json.dumps(about | {"max_seq_length": 7}))
    elif change == "weights":
        # The base model's folder retrained in place: the same name, other weights.
        import torch
        from sentence_transformers import SentenceTransformer

        folder = tmp_path / "base"
        shutil.copytree(json.loads((copy / "config.json").read_text())["base_model"], folder)
        for name in ("config.json", BASE_VECTORS / "about.json"):
            data = json.loads((copy / name).read_text())
            (copy / name).write_text(json.dumps(data | {"base_model": str(folder)}))
        # Same weights under the new name: the saved vectors are still these.
        seen = encoded_texts(monkeypatch)
        load_retriever(copy, "base", device="cpu")
        assert len(seen) == 0
        model = SentenceTransformer(str(folder), device="cpu")
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)
        model.save(str(folder))
        monkeypatch.undo()
    else:
        (copy / BASE_VECTORS / "index.faiss").write_bytes(b"not an index")
    seen = encoded_texts(monkeypatch)
    retriever = load_retriever(copy, "base", device="cpu")
    assert len(seen) == retriever.index.index.ntotal
    if change == "chunk_text":
        assert "Entirely different words about cooking pasta." in seen


def test_an_index_from_before_overlapping_passages_compares_with_passages_cut_the_same_way(
    run_dir: Path, tmp_path: Path, chunks: list[Chunk]
) -> None:
    from ragtune.retrieval import BASE_VECTORS, read_settings, retrieval_units, write_settings

    texts = [c.text for c in chunks]
    overlapping, cut = retrieval_units(texts, 20, stride=1), retrieval_units(texts, 20, stride=0)
    assert len(overlapping.texts) > len(cut.texts), "the fixture's chunks must tell the two apart"
    # ragtune 0.3 wrote no passage_stride and cut passages without overlap; its base vectors are not reused.
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("base"))
    settings = read_settings(copy / "index")
    write_settings(copy / "index", {k: v for k, v in settings.items() if k != "passage_stride"})
    assert not (copy / BASE_VECTORS).exists()
    assert load_retriever(copy, "base", device="cpu").index.owner.tolist() == cut.owner.tolist()
    assert load_retriever(run_dir, "base", device="cpu").index.owner.tolist() == overlapping.owner.tolist()


def test_modes_rank_by_model_bm25_or_both(tuned: Retriever, run_dir: Path, chunks: list[Chunk]) -> None:
    from ragtune.retrieval import bm25_rankings

    query = "human oversight of generative AI risks"
    dense, lexical, hybrid = (tuned.search(query, k=5, mode=m) for m in ("dense", "bm25", "hybrid"))
    texts, ids = [c.text for c in chunks], [c.id for c in chunks]
    assert [h.chunk_id for h in lexical] == bm25_rankings(texts, ids, [query], 5)[0]
    assert [h.rank for h in hybrid] == [1, 2, 3, 4, 5]
    # The fused score runs from 0 to 1, best first, and the hybrid draws on both lists.
    assert all(0 <= h.score <= 1 + 1e-9 for h in hybrid) and hybrid == sorted(hybrid, key=lambda h: -h.score)
    assert {h.chunk_id for h in hybrid} <= {h.chunk_id for h in tuned.search(query, k=100, mode="dense")} | {
        h.chunk_id for h in tuned.search(query, k=100, mode="bm25")
    }
    settings = json.loads((run_dir / "index" / "retriever.json").read_text(encoding="utf-8"))
    assert tuned.hybrid_weight == settings["hybrid_weight"] and tuned.mode == settings["mode"]
    # Without a mode, search uses the run's recommendation.
    assert [h.chunk_id for h in tuned.search(query, k=5)] == [
        h.chunk_id for h in tuned.search(query, k=5, mode=settings["mode"])
    ]
    with pytest.raises(ValueError, match="mode must be one of"):
        tuned.search(query, mode="sparse")  # type: ignore[arg-type]


def test_retriever_loads_from_the_package_root(run_dir: Path, tuned: Retriever) -> None:
    import ragtune

    r = ragtune.Retriever.load(run_dir, device="cpu")
    assert [h.chunk_id for h in r.search(QUERY, k=3)] == [h.chunk_id for h in tuned.search(QUERY, k=3)]


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    return out


@pytest.mark.parametrize("missing", ["index/index.faiss", "index/chunks.jsonl", "model"])
def test_incomplete_run_dir(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str) -> None:
    broken = copy_run(run_dir, tmp_path)
    target = broken / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(RunDirError, match="is not a finished ragtune run"):
        search(broken, QUERY)
    assert main(["search", str(broken), QUERY]) == 1
    assert_one_error_line(capsys.readouterr().err, str(broken), missing, "ragtune run")


def test_search_needs_an_existing_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(tmp_path / "nope"), QUERY, "--compare"]) == 1
    assert_one_error_line(capsys.readouterr().err, str(tmp_path / "nope"), "does not exist")


def test_index_that_does_not_match_its_chunks(run_dir: Path, tmp_path: Path) -> None:
    broken = copy_run(run_dir, tmp_path)
    lines = (broken / "index" / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    (broken / "index" / "chunks.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(RunDirError, match="does not match"):
        search(broken, QUERY)


# --- the CLI --------------------------------------------------------------------------

ROW = re.compile(r"^ ?(\d+)\.  ?[ *](\d\.\d{3}) (\S+) pp?\. [\d-]+ +[ *](\d\.\d{3}) (\S+) pp?\. [\d-]+$")


def test_cli_search(run_dir: Path, tuned: Retriever, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(run_dir), QUERY, "-k", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    hits = tuned.search(QUERY, k=3)
    assert out[0].startswith(f"fine-tuned model, {tuned.mode} mode; score: ")
    # Each hit prints as str(Hit): a heading line, then its wrapped text.
    assert "\n".join(out[1:]) == "\n".join(str(hit) for hit in hits)
    for hit in hits:
        assert str(hit).startswith(f"{hit.rank:>2}. {hit.score:.3f} {hit.kind}  {hit.source} p")
        assert str(hit).splitlines()[0].endswith(f"[{hit.chunk_id}]")


def test_cli_search_compare_shows_both_models_side_by_side(
    run_dir: Path, base: Retriever, tuned: Retriever, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", str(run_dir), QUERY, "-k", "4", "--compare", "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    mode = tuned.mode
    assert re.match(rf"^ +base, {mode} \(.+\) +fine-tuned, {mode} \(.+\)$", out[0]), out[0]
    rows = [ROW.match(line) for line in out[1:13:3]]
    assert all(rows), "\n".join(out)
    assert [int(r[1]) for r in rows] == [1, 2, 3, 4]
    assert [(r[2], r[3]) for r in rows] == [(f"{h.score:.3f}", h.source) for h in base.search(QUERY, k=4)]
    assert [(r[4], r[5]) for r in rows] == [(f"{h.score:.3f}", h.source) for h in tuned.search(QUERY, k=4)]
    assert out[-1].startswith("* = not in the other model's top 4; score: ")


# --- LlamaIndex datasets --------------------------------------------------------------


def test_export_import_round_trip(
    run_dir: Path, tmp_path: Path, chunks: list[Chunk], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "eval.json"
    assert main(["export", str(run_dir), "--llamaindex", str(path)]) == 0
    held = read_jsonl(run_dir / "work" / "pairs_test.jsonl", Pair)
    assert capsys.readouterr().out.startswith(f"Wrote {len(held)} test questions and {len(chunks)} corpus chunks")
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert sorted(raw) == ["corpus", "mode", "queries", "relevant_docs"] and raw["mode"] == "text"

    queries, corpus, relevant = load_llamaindex_dataset(path)
    # Query "test-N" is line N of pairs_test.jsonl (the test split); node ids are ragtune's chunk ids.
    assert queries == {f"test-{n}": p.query for n, p in enumerate(held)}
    assert relevant == {f"test-{n}": [p.chunk_id] for n, p in enumerate(held)}
    assert corpus == {c.id: c.text for c in chunks}


def test_train_export_holds_no_held_out_text(run_dir: Path, tmp_path: Path) -> None:
    export = export_llamaindex(run_dir, tmp_path / "train.json", split="train")
    queries, corpus, relevant = load_llamaindex_dataset(export.path)
    train = read_jsonl(run_dir / "work" / "pairs_train.jsonl", Pair)
    held_chunks = {p.chunk_id for p in read_jsonl(run_dir / "work" / "pairs_test.jsonl", Pair)}
    assert list(queries.values()) == [p.query for p in train]
    assert set(corpus) == {p.chunk_id for p in train} and not set(corpus) & held_chunks
    assert (export.n_queries, export.n_corpus) == (len(train), len(corpus))


def test_exported_eval_set_reproduces_the_run_metrics(
    run_dir: Path, tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = export_llamaindex(run_dir, tmp_path / "eval.json").path
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    # Same questions, same chunks, same index settings: the numbers the run reported.
    assert evaluate_on_dataset(run_dir, path, device="cpu") == pytest.approx(
        metrics["fine_tuned"], abs=5e-5
    )  # metrics.json holds 4 digits
    # And the base model (a plain model folder) gives the run's "base" numbers.
    assert main(["evaluate", str(tiny_model_dir), str(path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tiny_model_dir} on {metrics['n_queries']} queries over {metrics['n_chunks']} corpus")
    assert out[1].split() == ["hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"]
    assert out[2].split() == [f"{metrics['base'][k]:.3f}" for k in ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10")]


def write_dataset(path: Path, queries: dict, corpus: dict, relevant: dict) -> Path:
    path.write_text(
        json.dumps({"queries": queries, "corpus": corpus, "relevant_docs": relevant, "mode": "text"}), encoding="utf-8"
    )
    return path


def test_hand_worked_dataset_with_the_tiny_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    # With two corpus texts, a query equal to one text ranks it 1st and the other 2nd,
    # whatever the (random) weights are.
    corpus = {"n-a": "Zero trust assumes no implicit trust.", "n-b": "Bird song at dawn in the hills."}
    queries = {"q1": corpus["n-a"], "q2": corpus["n-a"], "q3": corpus["n-b"], "q4": corpus["n-b"]}
    relevant = {"q1": ["n-a"], "q2": ["n-b"], "q3": ["n-a", "n-b"], "q4": ["n-a"]}  # ranks 1, 2, 1, 2
    path = write_dataset(tmp_path / "qa.json", queries, corpus, relevant)
    m = evaluate_on_dataset(tiny_model_dir, path, device="cpu")
    assert m == {"hit@1": 0.5, "hit@3": 1.0, "hit@5": 1.0, "hit@10": 1.0, "mrr@10": 0.75}


def test_hand_worked_dataset_with_a_keyword_encoder() -> None:
    encoder = KeywordEncoder(["cat", "dog", "fish", "bird", "horse"])
    corpus = {"d-cat": "cats", "d-catdog": "cat and dog", "d-dog": "dogs", "d-fish": "fish", "d-bird": "bird"}
    queries = {"q1": "cat", "q2": "dog", "q3": "fish", "q4": "cat cat cat dog dog bird"}
    # q1: d-cat is 1st. q2: d-dog 1st, then d-catdog (cosine .71). q3: d-fish 1st, and either relevant id counts.
    # q4 = [3, 2, 0, 1, 0]: d-catdog .94, d-cat .80, d-dog .53, d-bird .27, d-fish 0, so d-bird is 4th.
    relevant = {"q1": ["d-cat"], "q2": ["d-catdog"], "q3": ["d-fish", "d-bird"], "q4": ["d-bird"]}
    m = evaluate_dataset(encoder, queries, corpus, relevant)
    assert m == {
        "hit@1": 0.5,
        "hit@3": 0.75,
        "hit@5": 1.0,
        "hit@10": 1.0,
        "mrr@10": pytest.approx((1 + 1 / 2 + 1 + 1 / 4) / 4),
    }


GOOD = {"queries": {"q1": "what?"}, "corpus": {"n1": "this."}, "relevant_docs": {"q1": ["n1"]}, "mode": "text"}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not valid JSON"),
        (json.dumps(["a", "list"]), "expected an object with"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "corpus"}), "expected an object with"),
        (json.dumps(GOOD | {"queries": {"q1": 3}}), '"queries" must be an object mapping ids to strings'),
        (json.dumps(GOOD | {"relevant_docs": {"q1": "n1"}}), '"relevant_docs" must be an object mapping'),
        (json.dumps(GOOD | {"relevant_docs": {"q1": ["n9"]}}), "1 id not in the corpus (e.g. 'n9')"),
        (json.dumps(GOOD | {"relevant_docs": {}}), "1 query id without relevant_docs (e.g. 'q1')"),
        (json.dumps(GOOD | {"relevant_docs": {"q1": ["n1"], "q7": ["n1"]}}), "1 unknown query id (e.g. 'q7')"),
        (json.dumps(GOOD | {"corpus": {}}), "has 1 query and 0 corpus texts; it needs both"),
        (json.dumps(GOOD | {"mode": "image"}), "only text datasets"),
        (None, "does not exist"),
    ],
)
def test_malformed_dataset_is_one_error_line(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], content: str | None, fragment: str
) -> None:
    path = tmp_path / "qa.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError):
        load_llamaindex_dataset(path)
    assert main(["evaluate", str(tiny_model_dir), str(path)]) == 1
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, str(path), fragment)
    assert captured.out == ""


# --- run --evaluation-set ------------------------------------------------------------------

KEYS = ["hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"]


def hand_worked_dataset(path: Path) -> Path:
    # As above: a query equal to one of two corpus texts ranks it 1st and the other 2nd,
    # for the base and the tuned model alike.
    corpus = {"n-a": "Zero trust assumes no implicit trust.", "n-b": "Bird song at dawn in the hills."}
    queries = {"q1": corpus["n-a"], "q2": corpus["n-a"], "q3": corpus["n-b"], "q4": corpus["n-b"]}
    relevant = {"q1": ["n-a"], "q2": ["n-b"], "q3": ["n-b"], "q4": ["n-a"]}  # ranks 1, 2, 1, 2
    return write_dataset(path, queries, corpus, relevant)


def test_add_dataset_metrics_records_both_models(run_dir: Path, tmp_path: Path) -> None:
    run = copy_run(run_dir, tmp_path)
    original = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    (tmp_path / "data").mkdir()
    path = hand_worked_dataset(tmp_path / "data" / "qa.json")

    entry = add_dataset_metrics(run, path, device="cpu")

    expected = {"hit@1": 0.5, "hit@3": 1.0, "hit@5": 1.0, "hit@10": 1.0, "mrr@10": 0.75}
    assert entry == {"file": "qa.json", "n_queries": 4, "n_corpus": 2, "base": expected, "fine_tuned": expected}
    saved = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert saved == original | {"evaluation_set": entry}
    assert not list(run.glob(".metrics.json.*"))  # the atomic write left no temporary file


def test_dataset_metrics_use_the_base_and_the_tuned_model(run_dir: Path, tmp_path: Path) -> None:
    # The run's own held-out set, exported: before and after must be the run's own numbers,
    # which differ when the base model sits in "base" and the tuned one in "fine_tuned".
    run = copy_run(run_dir, tmp_path)
    path = export_llamaindex(run, tmp_path / "held.json").path
    add_dataset_metrics(run, hand_worked_dataset(tmp_path / "qa.json"), device="cpu")

    entry = add_dataset_metrics(run, path, device="cpu")  # replaces the earlier entry

    saved = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert saved["base"] != saved["fine_tuned"]  # so a swap of the two models would show
    assert saved["evaluation_set"] == entry and entry["file"] == "held.json"
    assert entry["base"] == pytest.approx(saved["base"], abs=5e-5)
    assert entry["fine_tuned"] == pytest.approx(saved["fine_tuned"], abs=5e-5)


def test_cli_run_with_eval_dataset_prints_a_second_table(
    run_dir: Path, tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(run_dir, tmp_path)
    path = hand_worked_dataset(tmp_path / "qa.json")
    # The same settings as the fixture's run, so every stage is reused and only the dataset is new.
    args = [
        "run",
        str(run_dir.parent / "docs"),
        "--out",
        str(run),
        "--base-model",
        str(tiny_model_dir),
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--chunk-tokens",
        "64",
        "--chunk-overlap",
        "8",
        "--device",
        "cpu",
        "--val-fraction",
        "0",
        "--evaluation-set",
        str(path),
    ]

    assert main(args) == 0
    captured = capsys.readouterr()
    assert "unchanged, reused" in captured.err
    out = captured.out.splitlines()
    start = out.index("Retrieval on 4 questions from qa.json over 2 corpus texts:")
    assert out[start + 1].split() == KEYS
    assert out[start + 2].split() == ["base", "0.500", "1.000", "1.000", "1.000", "0.750"]
    assert out[start + 3].split() == ["fine-tuned", "0.500", "1.000", "1.000", "1.000", "0.750"]
    assert json.loads((run / "metrics.json").read_text(encoding="utf-8"))["evaluation_set"]["file"] == "qa.json"
    assert json.loads((run / "config.json").read_text(encoding="utf-8")).get("evaluation_set") is None


def test_cli_run_with_a_malformed_eval_dataset_fails_before_running(
    run_dir: Path, tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(GOOD | {"relevant_docs": {"q1": ["n9"]}}), encoding="utf-8")
    out = tmp_path / "run"

    assert (
        main(
            [
                "run",
                str(run_dir.parent / "docs"),
                "--out",
                str(out),
                "--base-model",
                str(tiny_model_dir),
                "--evaluation-set",
                str(path),
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, str(path), "1 id not in the corpus")
    assert captured.out == "" and not out.exists()


def test_as_langchain_and_llamaindex_retrievers_return_the_same_chunks(tuned: Retriever) -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    hits = tuned.search(QUERY, k=4, mode="hybrid")
    docs = tuned.as_langchain(k=4, mode="hybrid").invoke(QUERY)
    nodes = tuned.as_llamaindex(k=4, mode="hybrid").retrieve(QUERY)
    assert [d.metadata["chunk_id"] for d in docs] == [h.chunk_id for h in hits]
    assert [d.page_content for d in docs] == [h.text for h in hits]
    assert docs[0].metadata["source"] == hits[0].source and docs[0].metadata["pages"] == list(hits[0].pages)
    assert [n.node.node_id for n in nodes] == [h.chunk_id for h in hits]
    assert [n.score for n in nodes] == pytest.approx([h.score for h in hits])
