"""The whole pipeline with the tiny model: artefacts, stage caching, the split, and run-dir errors."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ragtune import Config, Pipeline, RunResult
from ragtune.errors import NotEnoughDataError
from ragtune.fileio import file_digest
from ragtune.metrics import is_improved
from ragtune.pipeline import STAGES
from ragtune.records import Chunk, LabelledPair, Page, Pair, RunDirError, read_jsonl
from ragtune.rundir import MANIFEST_VERSION

METRIC_KEYS = {"hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"}


def write_docs(folder: Path, pages: list[Page]) -> Path:
    """Three .txt files and a .md file of NIST prose (pages 5-12, about 4,000 words)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = {p.page: p.text for p in pages}
    for name, numbers in [
        ("intro.txt", [5, 6]),
        ("risks.txt", [7, 8]),
        ("more_risks.txt", [9, 10]),
        ("environment.md", [11, 12]),
    ]:
        (folder / name).write_text("\n\n".join(text[n] for n in numbers), encoding="utf-8")
    assert 3500 <= sum(len(f.read_text(encoding="utf-8").split()) for f in folder.iterdir()) <= 4800
    return folder


def tiny_config(docs: Path, out: Path, model_dir: Path, **changes: object) -> Config:
    return Config(
        docs=docs,
        out=out,
        base_model=str(model_dir),
        max_steps=2,
        batch_size=4,
        chunk_tokens=64,
        chunk_overlap=8,
        device="cpu",
        **changes,
    )  # type: ignore[arg-type]


@dataclass
class Finished:
    cfg: Config
    result: RunResult
    root: Path


@pytest.fixture(scope="module")
def finished(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, nist_pages: list[Page]
) -> Iterator[Finished]:
    """One complete run, shared by the tests that only read it (others copy it first)."""
    root = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(root / "hf_home"))
        cfg = tiny_config(write_docs(root / "docs", nist_pages), root / "run", tiny_model_dir)
        result = Pipeline(cfg).run()
        yield Finished(cfg, result, root)


def copy_run(finished: Finished, tmp_path: Path) -> Config:
    """A private copy of the finished run directory (same folder name, so the card summary is unchanged)."""
    out = tmp_path / finished.cfg.out.name
    shutil.copytree(finished.cfg.out, out)
    return finished.cfg.replace(out=out)


class Recorder:
    def __init__(self) -> None:
        self.ended: list[tuple[str, bool]] = []
        self.started: list[tuple[str, int, int]] = []
        self.progress: dict[str, list[tuple[int, int]]] = {}
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    def stage_start(self, name: str, index: int, total: int) -> None:
        self.started.append((name, index, total))

    def stage_progress(self, name: str, done: int, total: int) -> None:
        self.progress.setdefault(name, []).append((done, total))

    def stage_end(self, name: str, summary: str, seconds: float, cached: bool) -> None:
        self.ended.append((name, cached))


# --- one full run ---------------------------------------------------------------------


def test_all_artefacts_exist(finished: Finished) -> None:
    run = finished.cfg.out
    for rel in [
        "work/pages.jsonl",
        "work/chunks.jsonl",
        "work/pairs_train.jsonl",
        "work/pairs_test.jsonl",
        "model/model.safetensors",
        "model/README.md",
        "model/config.json",
        "metrics.json",
        "index/index.faiss",
        "index/chunks.jsonl",
        "report.md",
        "work/manifest.json",
    ]:
        assert (run / rel).is_file(), rel
    pages = read_jsonl(run / "work" / "pages.jsonl", Page)
    assert sorted({p.source for p in pages}) == ["environment.md", "intro.txt", "more_risks.txt", "risks.txt"]
    chunks = read_jsonl(run / "work" / "chunks.jsonl", Chunk)
    assert len(chunks) >= 40
    assert all(c.n_tokens <= 64 for c in chunks)
    # The index ships with exactly the chunks it was built from.
    assert read_jsonl(run / "index" / "chunks.jsonl", Chunk) == chunks
    # Leftovers of the atomic model swap and of training are cleaned up.
    assert not (run / "work" / "model.tmp").exists() and not (run / "work" / "checkpoints").exists()


def test_report_html_embeds_the_plots_and_push_can_render_the_card(finished: Finished) -> None:
    import base64
    import re

    from huggingface_hub import ModelCard

    run = finished.cfg.out
    page = (run / "report.html").read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    # Self-contained: the retrievers plot at least, each the same bytes as its PNG beside it, nothing fetched.
    assert len(images) >= 2 and not re.search(r'(?:src|href)="(?:https?:)?//', page)
    for data in images:
        assert base64.b64decode(data) in {p.read_bytes() for p in (run / "plots").glob("*.png")}
    assert (run / "plots" / "retrievers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert f"{metrics['fine_tuned']['hit@5']:.3f}" in page
    # Per-theme figures and the score shift are measured on the same held-out questions.
    assert sum(r["n"] for r in metrics["per_theme"].values()) >= metrics["n_queries"]
    assert set(metrics["similarity"]) == {"base", "fine_tuned", "cutoff_map", "warn"}
    card = ModelCard.load(run / "model" / "README.md")
    assert card.data.library_name == "sentence-transformers" and card.data.model_name == f"ragtune-{run.name}"
    saved = json.loads((run / "work" / "card.json").read_text(encoding="utf-8"))
    # The run's own costs ("stages", "plan") are added to metrics.json after the save stage wrote card.json.
    assert saved["metrics"] == {k: v for k, v in metrics.items() if k not in ("stages", "plan")}


def test_metrics_file(finished: Finished) -> None:
    run = finished.cfg.out
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert {"base", "fine_tuned", "bm25", "improved"} <= set(metrics)
    for system in ("base", "fine_tuned", "bm25"):
        assert set(metrics[system]) == METRIC_KEYS, system
        assert all(0.0 <= v <= 1.0 for v in metrics[system].values())
        m = metrics[system]
        assert m["hit@1"] <= m["hit@3"] <= m["hit@5"] <= m["hit@10"]
    assert isinstance(metrics["improved"], bool)
    before, after = metrics["base"], metrics["fine_tuned"]
    keys = ("hit@5", "mrr@10")
    assert metrics["improved"] == (all(after[k] >= before[k] for k in keys) and any(after[k] > before[k] for k in keys))
    assert metrics["n_queries"] == len(read_jsonl(run / "work" / "pairs_test.jsonl", Pair))
    assert metrics["n_chunks"] == len(read_jsonl(run / "work" / "chunks.jsonl", Chunk))
    assert finished.result.metrics == metrics


def test_model_loads_and_index_holds_its_embeddings(finished: Finished) -> None:
    import faiss
    from sentence_transformers import SentenceTransformer

    run = finished.cfg.out
    tuned = SentenceTransformer(str(run / "model"), device="cpu")
    chunks = read_jsonl(run / "work" / "chunks.jsonl", Chunk)
    vecs = tuned.encode([c.text for c in chunks], normalize_embeddings=True, convert_to_numpy=True)
    assert vecs.shape == (len(chunks), 32)
    from ragtune.retrieval import retrieval_units

    index = faiss.read_index(str(run / "index" / "index.faiss"))
    rows = np.load(run / "index" / "rows.npy")
    # One row per chunk, then one per passage, each naming its chunk.
    units = retrieval_units([c.text for c in chunks], finished.cfg.passage_words, finished.cfg.passage_stride)
    assert index.ntotal == len(rows) == len(units.texts) > len(chunks)
    assert rows.tolist() == units.owner.tolist() and rows[: len(chunks)].tolist() == list(range(len(chunks)))
    # The saved index is the saved model's, encoded in the precision the run trained in: what an app gets from
    # the model folder in fp32 to within bf16's rounding. (Whether that model differs from the base is
    # validation's call; tests/test_train.py covers the choice.)
    stored = index.reconstruct_n(0, index.ntotal)
    passages = tuned.encode(units.texts[len(chunks) :], normalize_embeddings=True, convert_to_numpy=True)
    for saved, fresh in ((stored[: len(chunks)], vecs), (stored[len(chunks) :], passages)):
        assert saved.shape == fresh.shape and float((saved * fresh).sum(axis=1).min()) > 0.9999
        np.testing.assert_allclose(saved, fresh, atol=2e-3)


def test_card_and_report(finished: Finished, tiny_model_dir: Path) -> None:
    run = finished.cfg.out
    card = (run / "model" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "model-index:" in card and "library_name: sentence-transformers" in card
    assert "ragtune" in card
    assert str(tiny_model_dir) not in card and str(finished.root) not in card
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "| fine-tuned |" in report
    assert f"- chunks: {finished.result.summary['n_chunks']}" in report


def test_eval_and_train_chunks_are_disjoint(finished: Finished) -> None:
    run = finished.cfg.out
    train = read_jsonl(run / "work" / "pairs_train.jsonl", Pair)
    val = read_jsonl(run / "work" / "pairs_val.jsonl", Pair)
    held = read_jsonl(run / "work" / "pairs_test.jsonl", Pair)
    assert train and val and held
    sides = [{p.chunk_id for p in side} for side in (train, val, held)]
    assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]
    # Together they are the generated questions, less the training questions that failed the round trip;
    # each points at a real chunk.
    everything = read_jsonl(run / "work" / "pairs.jsonl", Pair)
    failed = finished.result.summary["skipped"]["split"]
    n_failed = sum(failed.values())
    assert len(train) + len(val) + len(held) + n_failed == len(everything)
    assert set(map(repr, train + val + held)) <= set(map(repr, everything))
    n_val = round(0.1 / 0.8 * (len(sides[0]) + len(sides[1])))
    assert len(sides[1]) == n_val
    ids = {c.id for c in read_jsonl(run / "work" / "chunks.jsonl", Chunk)}
    assert {p.chunk_id for p in everything} <= ids
    n_chunks = len({p.chunk_id for p in everything})
    assert len({p.chunk_id for p in held}) == round(0.2 * n_chunks)
    summary = finished.result.summary
    assert (summary["n_train"], summary["n_test"]) == (len(train), len(held))
    assert finished.result.summary["train"]["steps"] >= 1


def test_only_training_questions_pass_the_bm25_round_trip(finished: Finished) -> None:
    """Held-out and validation questions pass no retriever's filter, so BM25 is not favoured by
    construction in the run's own table; every training question's chunk is in BM25's top K."""
    from ragtune.retrieval import bm25_rankings

    run = finished.cfg.out
    chunks = read_jsonl(run / "work" / "chunks.jsonl", Chunk)
    everything = read_jsonl(run / "work" / "pairs.jsonl", Pair)
    k = finished.cfg.round_trip_k
    ranked = bm25_rankings([c.text for c in chunks], [c.id for c in chunks], [p.query for p in everything], k)
    passes = {repr(p): p.chunk_id in top for p, top in zip(everything, ranked)}
    train = read_jsonl(run / "work" / "pairs_train.jsonl", Pair)
    assert train and all(passes[repr(p)] for p in train)
    for side in ("pairs_val.jsonl", "pairs_test.jsonl"):
        kept = read_jsonl(run / "work" / side, Pair)
        ids = {p.chunk_id for p in kept}
        # Every generated question of these chunks is kept, those BM25 misses too.
        assert sorted(map(repr, kept)) == sorted(repr(p) for p in everything if p.chunk_id in ids)
    missed = [p for p in everything if not passes[repr(p)]]
    held_ids = {p.chunk_id for p in read_jsonl(run / "work" / "pairs_test.jsonl", Pair)}
    assert any(p.chunk_id in held_ids for p in missed), "no held-out question that BM25 misses: weak test data"
    assert sum(finished.result.summary["skipped"]["split"].values()) == len(
        [
            p
            for p in missed
            if p.chunk_id not in held_ids
            and p.chunk_id not in {q.chunk_id for q in read_jsonl(run / "work" / "pairs_val.jsonl", Pair)}
        ]
    )


def test_served_retriever_is_chosen_on_validation_and_recorded_everywhere(finished: Finished) -> None:
    from ragtune.metrics import choose_served
    from ragtune.search import Retriever

    metrics = finished.result.metrics
    scores = {float(w): m for w, m in metrics["hybrid_weight_validation"].items()}
    assert 0.0 in scores and 1.0 in scores and len(scores) == 11
    evidence = metrics["served"]["against_hybrid"]
    mode, weight = choose_served(scores, finished.cfg.hybrid_weight, evidence)
    assert weight == finished.cfg.hybrid_weight == 0.6
    assert (metrics["served"]["mode"], metrics["hybrid_weight"]) == (mode, weight)
    assert metrics["recommended_mode"] == mode and metrics["served"]["chosen_on"] == "validation questions"
    # The evidence was measured on the same questions as the scores: each rival's gain is the difference of
    # the recorded MRR@10s (each rounded to 4 places).
    for rival, share in (("bm25", 0.0), ("dense", 1.0)):
        assert evidence[rival]["mrr@10"] == pytest.approx(scores[share]["mrr@10"] - scores[0.6]["mrr@10"], abs=2e-4)
        assert 0.0 <= evidence[rival]["p"] <= 1.0
    # The served row is the held-out row of that retriever.
    row = {"dense": "fine_tuned_passages", "hybrid": "hybrid", "bm25": "bm25"}[mode]
    assert {k: metrics["served"][k] for k in metrics[row]} == metrics[row]
    retriever = Retriever.load(finished.cfg.out)
    assert (retriever.mode, retriever.hybrid_weight) == (mode, weight)
    assert len(retriever.search("What are the risks of generative AI?", k=3)) == 3


@pytest.mark.parametrize("weight", [0.65, None], ids=["fixed", "auto"])
def test_the_hybrid_weight_is_kept_or_chosen_on_validation(
    finished: Finished, tmp_path: Path, weight: float | None
) -> None:
    from ragtune.metrics import choose_served

    cfg = copy_run(finished, tmp_path).replace(hybrid_weight=weight)
    again = Pipeline(cfg).run()
    assert again.cached == ["extract", "chunk", "theme", "generate", "split", "train"]
    scores = {float(w): m for w, m in again.metrics["hybrid_weight_validation"].items()}
    if weight is not None:
        assert again.metrics["hybrid_weight"] == 0.65 and 0.65 in scores
    else:
        # auto: the best dense share strictly between BM25 alone and the model alone.
        inner = {w: m for w, m in scores.items() if 0 < w < 1}
        best = max(inner, key=lambda w: (inner[w]["mrr@10"], inner[w]["hit@5"], w))
        assert again.metrics["hybrid_weight"] == best
    evidence = again.metrics["served"]["against_hybrid"]
    assert (again.metrics["served"]["mode"], again.metrics["hybrid_weight"]) == choose_served(scores, weight, evidence)


def test_manifest_records_every_stage(finished: Finished) -> None:
    manifest = json.loads((finished.cfg.out / "work" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["ragtune_manifest"] == MANIFEST_VERSION
    assert list(manifest["stages"]) == list(STAGES)
    assert all(entry["key"] for entry in manifest["stages"].values())
    # Each stage's outputs are recorded by size and digest, so a changed file is noticed.
    outputs = manifest["stages"]["generate"]["outputs"]
    assert outputs == {"work/pairs.jsonl": file_digest(finished.cfg.out / "work" / "pairs.jsonl")}
    # Every file training wrote into model/ but the card, which the save stage writes and a user may edit.
    model = finished.cfg.out / "model"
    trained = {
        f"model/{p.relative_to(model).as_posix()}"
        for p in model.rglob("*")
        if p.is_file() and p.relative_to(model).as_posix() != "README.md"
    }
    assert set(manifest["stages"]["train"]["outputs"]) == trained
    assert {"model/config.json", "model/model.safetensors", "model/modules.json"} <= trained
    # The index: bm25/ is one folder digest.
    assert set(manifest["stages"]["evaluate"]["outputs"]) == {
        "index/index.faiss",
        "index/rows.npy",
        "index/retriever.json",
        "index/bm25",
    }
    assert finished.result.cached == []
    assert set(finished.result.timings) == set(STAGES)


# --- reruns ---------------------------------------------------------------------------


def test_identical_rerun_reuses_every_stage(finished: Finished, tmp_path: Path) -> None:
    cfg = copy_run(finished, tmp_path)
    weights = cfg.out / "model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    recorder = Recorder()
    again = Pipeline(cfg, recorder).run()
    assert again.cached == list(STAGES)
    assert again.timings == {}
    assert recorder.ended == [(s, True) for s in STAGES]
    assert recorder.started == [(s, i, len(STAGES)) for i, s in enumerate(STAGES, start=1)]
    assert again.metrics == finished.result.metrics
    assert again.summary == finished.result.summary
    assert weights.stat().st_mtime_ns == stamp


def test_changed_setting_reruns_from_that_stage(finished: Finished, tmp_path: Path) -> None:
    cfg = copy_run(finished, tmp_path).replace(questions_per_chunk=2)
    pairs_before = read_jsonl(cfg.out / "work" / "pairs.jsonl", Pair)
    again = Pipeline(cfg).run()
    assert again.cached == ["extract", "chunk", "theme"]
    assert list(again.timings) == ["generate", "split", "train", "evaluate", "save"]
    pairs = read_jsonl(cfg.out / "work" / "pairs.jsonl", Pair)
    assert pairs != pairs_before
    per_chunk: dict[str, int] = {}
    for p in pairs:
        per_chunk[p.chunk_id] = per_chunk.get(p.chunk_id, 0) + 1
    assert max(per_chunk.values()) == 2
    assert again.summary["n_pairs"] == len(pairs)
    # And the run after that reuses everything again.
    assert Pipeline(cfg).run().cached == list(STAGES)


def test_changed_chunking_reruns_from_chunk(finished: Finished, tmp_path: Path) -> None:
    cfg = copy_run(finished, tmp_path).replace(chunk_tokens=48)
    again = Pipeline(cfg).run()
    assert again.cached == ["extract"]
    assert max(c.n_tokens for c in read_jsonl(cfg.out / "work" / "chunks.jsonl", Chunk)) <= 48


def test_rebuilt_model_is_re_evaluated_and_gets_a_ragtune_card(finished: Finished, tmp_path: Path) -> None:
    cfg = copy_run(finished, tmp_path)
    shutil.rmtree(cfg.out / "model")
    again = Pipeline(cfg).run()
    assert again.cached == ["extract", "chunk", "theme", "generate", "split"]
    assert "model-index:" in (cfg.out / "model" / "README.md").read_text(encoding="utf-8")


def test_changed_document_reruns_everything(finished: Finished, tmp_path: Path, nist_pages: list[Page]) -> None:
    docs = write_docs(tmp_path / "docs", nist_pages)
    cfg = copy_run(finished, tmp_path).replace(docs=docs)
    # Same bytes in another folder: nothing to redo.
    assert Pipeline(cfg).run().cached == list(STAGES)
    with (docs / "intro.txt").open("a", encoding="utf-8") as f:
        f.write("\n\nA closing paragraph added later changes the document and so its fingerprint.\n")
    assert Pipeline(cfg).run().cached == []


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "manifest",
    [
        {"ragtune_manifest": 0, "ragtune_version": "0.0.1", "stages": {}},
        {"ragtune_manifest": 99, "ragtune_version": "9.9.9", "stages": {}},
        ["not", "a", "manifest"],
    ],
)
def test_incompatible_manifest_is_a_run_dir_error(tmp_path: Path, tiny_model_dir: Path, manifest: object) -> None:
    out = tmp_path / "old_run"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(RunDirError) as e:
        Pipeline(tiny_config(tmp_path / "docs", out, tiny_model_dir))
    msg = str(e.value)
    assert str(out) in msg and "--out" in msg
    if isinstance(manifest, dict):
        assert manifest["ragtune_version"] in msg


def test_corrupt_manifest_is_a_run_dir_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"ragtune_manifest": 1,', encoding="utf-8")
    with pytest.raises(RunDirError, match="not valid JSON"):
        Pipeline(tiny_config(tmp_path / "docs", out, tiny_model_dir))


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary",
        json.dumps({"ragtune_manifest": MANIFEST_VERSION, "stages": ["extract"]}).encode(),
        json.dumps({"ragtune_manifest": MANIFEST_VERSION, "stages": {"extract": "done"}}).encode(),
        json.dumps({"ragtune_manifest": MANIFEST_VERSION, "stages": {"extract": {"key": 5}}}).encode(),
        json.dumps({"ragtune_manifest": MANIFEST_VERSION, "stages": {"extract": {"key": "k", "outputs": 3}}}).encode(),
    ],
    ids=["binary", "stages-list", "entry-string", "key-number", "outputs-number"],
)
def test_damaged_manifest_is_one_line_telling_what_to_do(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    from ragtune.cli import main

    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_bytes(content)
    docs = write_docs(tmp_path / "docs", nist_pages)
    code = main(["run", str(docs), "--out", str(out), "--base-model", str(tiny_model_dir), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"ragtune: error: {out}") and "use a new --out directory or delete this one" in last, err


def test_old_format_stage_file_is_a_run_dir_error(finished: Finished, tmp_path: Path) -> None:
    cfg = copy_run(finished, tmp_path).replace(chunk_tokens=48)
    pages = cfg.out / "work" / "pages.jsonl"
    lines = pages.read_text(encoding="utf-8").splitlines()
    pages.write_text("\n".join(['{"ragtune": "page", "version": 0}'] + lines[1:]) + "\n", encoding="utf-8")
    # A manifest from before output digests were recorded: extract is reused, so chunking reads the old-format file.
    # (An entry without its check is redone, so the check is computed again over what is left.)
    from ragtune.rundir import _entry_check

    manifest = json.loads((cfg.out / "work" / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["stages"]["extract"]
    for name in ("outputs", "check"):
        del entry[name]
    entry["check"] = _entry_check(entry)
    (cfg.out / "work" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(RunDirError, match="format version 0"):
        Pipeline(cfg).run()


def test_too_little_text(tmp_path: Path, tiny_model_dir: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "memo.txt").write_text(
        "Zero trust architecture assumes there is no implicit trust granted to assets or user accounts based "
        "solely on their physical or network location. Authentication and authorization are discrete functions "
        "performed before a session to an enterprise resource is established. Zero trust focuses on protecting "
        "resources, not network segments, as the network location is no longer seen as the prime component of the "
        "security posture of the resource.",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    with pytest.raises(NotEnoughDataError) as e:
        Pipeline(tiny_config(docs, out, tiny_model_dir)).run()
    assert "at least" in str(e.value)
    assert not (out / "model").exists()


# --- mixed training with labelled pairs -----------------------------------------------


def test_mixed_run_trains_on_labelled_pairs_and_reports_both(finished: Finished, tmp_path: Path) -> None:
    from tests.conftest import REPO

    pairs_csv = REPO / "tests" / "data" / "pairs" / "skills.csv"
    # patience=0: all 4 steps run, however the validation scores fall (the default patience of 2 stops at
    # step 3 when step 1 scores best, as it does with these questions).
    cfg = copy_run(finished, tmp_path).replace(pairs_files=(pairs_csv,), max_steps=4, patience=0)
    rec = Recorder()
    result = Pipeline(cfg, rec).run()
    # Question generation is untouched; training and everything after it reruns.
    assert [name for name, cached in rec.ended if cached] == ["extract", "chunk", "theme", "generate", "split"]
    # The stages that ran showed progress: steps, then texts encoded, counting up to their total.
    assert set(rec.progress) == {"train", "evaluate"}
    for calls in rec.progress.values():
        done = [d for d, _ in calls]
        assert done == sorted(done) and calls[-1][0] == calls[-1][1] > 0
    assert rec.progress["train"][-1][1] == 4
    m = result.metrics
    assert set(m["pairs"]["base"]) == {"pearson", "spearman"} and set(m["pairs"]["fine_tuned"]) == {
        "pearson",
        "spearman",
    }
    held = read_jsonl(cfg.out / "work" / "labelled_test.jsonl", LabelledPair)
    train = read_jsonl(cfg.out / "work" / "labelled_train.jsonl", LabelledPair)
    assert m["pairs"]["n_pairs"] == len(held) > 5
    assert not {(p.sentence1, p.sentence2) for p in held} & {(p.sentence1, p.sentence2) for p in train}
    assert m["improved"] == (
        is_improved(m["base"], m["fine_tuned"])
        and m["pairs"]["fine_tuned"]["spearman"] > m["pairs"]["base"]["spearman"]
    )
    assert "held-out pairs" in (cfg.out / "model" / "README.md").read_text()
    # Dropping the pairs again removes their split files instead of leaving stale ones.
    Pipeline(cfg.replace(pairs_files=())).run()
    assert not (cfg.out / "work" / "labelled_test.jsonl").exists()


def test_matryoshka_run_reports_each_size_and_cached_loss_trains(finished: Finished, tmp_path: Path) -> None:
    cfg = copy_run(finished, tmp_path).replace(matryoshka_dims=(16, 8), mini_batch_size=2, max_steps=2)
    rec = Recorder()
    m = Pipeline(cfg, rec).run().metrics
    assert [name for name, cached in rec.ended if cached] == ["extract", "chunk", "theme", "generate", "split"]
    # The stages that ran showed progress: steps, then texts encoded, counting up to their total.
    assert set(rec.progress) == {"train", "evaluate"}
    for calls in rec.progress.values():
        done = [d for d, _ in calls]
        assert done == sorted(done) and calls[-1][0] == calls[-1][1] > 0
    assert rec.progress["train"][-1][1] == cfg.max_steps
    assert list(m["dims"]) == ["16", "8"]
    for size in m["dims"].values():
        assert set(size) == {"base", "fine_tuned"} and set(size["fine_tuned"]) == METRIC_KEYS
    # Cut to 8 of 32 dimensions, the base model ranks differently than at full size.
    assert m["dims"]["8"]["base"] != m["base"]
    card = (cfg.out / "model" / "README.md").read_text()
    assert "Trained with Matryoshka loss" in card and "| 8 |" in card


def test_card_records_how_the_weights_were_chosen(finished: Finished) -> None:
    card = (finished.cfg.out / "model" / "README.md").read_text()
    v = json.loads((finished.cfg.out / "work" / "manifest.json").read_text())["stages"]["train"]["validation"]
    assert v["n_questions"] > 0 and v["best_step"] is not None and v["mix"] in (0.0, 0.5, 0.75, 1.0)
    assert {"0.0", "1.0"} <= set(v["mix_scores"]) <= {"0.0", "0.5", "0.75", "1.0"}
    assert "## Model selection" in card
    assert f"The shipped weights keep {v['mix']:.0%} of the change from the base" in card


def test_long_chunks_raise_max_seq_length_instead_of_being_cut(
    finished: Finished, tiny_model_dir: Path, tmp_path: Path
) -> None:
    # The same tiny model, saved with max_seq_length 48 of its 130 positions.
    short = tmp_path / "short_model"
    shutil.copytree(tiny_model_dir, short)
    settings = json.loads((short / "sentence_bert_config.json").read_text())
    (short / "sentence_bert_config.json").write_text(json.dumps(settings | {"max_seq_length": 48}))
    cfg = finished.cfg.replace(out=tmp_path / "run", base_model=str(short), chunk_tokens=100, chunk_overlap=10)
    Pipeline(cfg).run()
    chunks = read_jsonl(cfg.out / "work" / "chunks.jsonl", Chunk)
    longest = max(c.n_tokens for c in chunks)
    assert 46 < longest <= 100
    info = json.loads((cfg.out / "work" / "manifest.json").read_text())["stages"]["chunk"]
    assert info["max_seq_length"] == longest + 2
    assert info["longer_than_default"] == sum(c.n_tokens + 2 > 48 for c in chunks) > 0
    from sentence_transformers import SentenceTransformer

    # The saved model reads chunks that long too, wherever it is loaded, and as long as apps chunk: ragtune
    # saves min(positions, 512), here all of the tiny model's 130 positions.
    saved = SentenceTransformer(str(cfg.out / "model"), device="cpu").max_seq_length
    assert saved >= longest + 2 and saved == 130


def test_hard_negative_run_gives_every_training_chunk_a_negative_it_may_see(
    finished: Finished, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragtune.training.trainer as train

    given: list[dict[str, str]] = []
    real = train.fine_tune

    def recording(*args: object, **kwargs: object) -> object:
        given.append(kwargs["negatives"])  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(train, "fine_tune", recording)
    cfg = copy_run(finished, tmp_path).replace(hard_negatives=True, same_theme_negatives=True)
    rec = Recorder()
    Pipeline(cfg, rec).run()
    assert [name for name, cached in rec.ended if not cached] == ["train", "evaluate", "save"]
    (negatives,) = given
    # Every training chunk keeps its row (mining on the tiny model finds little; the rest are filled in) ...
    assert set(negatives) == {p.chunk_id for p in read_jsonl(cfg.out / "work" / "pairs_train.jsonl", Pair)}
    assert all(neg != cid for cid, neg in negatives.items())
    # ... and negatives are training chunks: never a held-out or a validation chunk.
    unseen = {
        p.chunk_id
        for name in ("pairs_test.jsonl", "pairs_val.jsonl")
        for p in read_jsonl(cfg.out / "work" / name, Pair)
    }
    assert not set(negatives.values()) & unseen


# --- stale or damaged run-dir files ---------------------------------------------------


def full_disk_at_model_save(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make saving the final model (into model.tmp) fail as a full disk does, after training and
    its checkpoints; returns the real SentenceTransformer.save, to put back."""
    from sentence_transformers import SentenceTransformer

    real_save = SentenceTransformer.save

    def full_disk(self: SentenceTransformer, path: str, *args: object, **kwargs: object) -> None:
        if Path(path).name == "model.tmp":
            Path(path).mkdir()
            (Path(path) / "model.safetensors").write_bytes(b"\0" * 1000)
            raise OSError(28, "No space left on device")
        real_save(self, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SentenceTransformer, "save", full_disk)
    return real_save


@pytest.mark.parametrize("damage", ["truncate", "binary"])
def test_changed_stage_output_is_noticed_and_its_stage_redone(finished: Finished, tmp_path: Path, damage: str) -> None:
    cfg = copy_run(finished, tmp_path)
    pairs = cfg.out / "work" / "pairs.jsonl"
    good = pairs.read_bytes()
    # Cut off mid-line, as a crash or a full disk would leave it, or overwritten with something else.
    pairs.write_bytes(good[: len(good) // 2] if damage == "truncate" else b"\x00\xff\xfe" * 100)
    rec = Recorder()
    result = Pipeline(cfg, rec).run()
    assert result.cached == ["extract", "chunk", "theme"]
    assert rec.notes == ["work/pairs.jsonl changed since the generate stage wrote it; redoing the generate stage"]
    # The same settings write the same questions again: nothing is lost.
    assert pairs.read_bytes() == good
    assert result.summary["n_pairs"] == finished.result.summary["n_pairs"]
    assert Pipeline(cfg).run().cached == list(STAGES)


def test_edited_manifest_entry_redoes_its_stage_instead_of_failing(finished: Finished, tmp_path: Path) -> None:
    cfg = copy_run(finished, tmp_path)
    path = cfg.out / "work" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    # A wrong type where a later step reads the stage's record (the summary's theme list).
    manifest["stages"]["theme"]["per_theme"] = "security"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    rec = Recorder()
    result = Pipeline(cfg, rec).run()
    assert result.cached == ["extract", "chunk"]
    assert rec.notes == ["its entry in manifest.json was changed since it was written; redoing the theme stage"]
    assert result.summary["themes"] == finished.result.summary["themes"]


def test_interrupted_after_the_last_checkpoint_finishes_without_training_again(
    finished: Finished, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    from ragtune.errors import DiskFullError, RagtuneError

    cfg = copy_run(finished, tmp_path)
    shutil.rmtree(cfg.out / "model")
    real_save = full_disk_at_model_save(monkeypatch)
    with pytest.raises(DiskFullError) as e:
        Pipeline(cfg).run()
    assert isinstance(e.value, RagtuneError)
    msg = str(e.value)
    assert "\n" not in msg and f"no space left on the disk of {cfg.out}: training (checkpoints of about" in msg
    assert re.search(r"needs about \d+ MB, [\d.]+ [MG]B is free now", msg) and "rerun the same command" in msg
    # The half-written model gave its space back; the last checkpoint (step 2 of 2) is kept.
    assert not (cfg.out / "work" / "model.tmp").exists()
    assert (cfg.out / "work" / "checkpoints" / "checkpoint-2" / "ragtune_checkpoint.json").is_file()
    monkeypatch.setattr(SentenceTransformer, "save", real_save)
    rec = Recorder()
    again = Pipeline(cfg, rec).run()
    # Training had ended: its result is taken as it was, with no step 3 of 2.
    assert rec.progress["train"] == [(2, 2)]
    train = json.loads((cfg.out / "work" / "manifest.json").read_text())["stages"]["train"]
    assert train["steps"] == 2 and train["resumed_at"] == 2
    assert train["validation"]["best_step"] == finished.result.summary["train"]["validation"]["best_step"]
    # ... and the model is the one the uninterrupted run saved.
    ours, theirs = (
        load_file(cfg.out / "model" / "model.safetensors"),
        load_file(finished.cfg.out / "model" / "model.safetensors"),
    )
    assert ours.keys() == theirs.keys() and all(np.allclose(ours[k], theirs[k], atol=1e-6) for k in ours)
    assert again.metrics["fine_tuned"] == finished.result.metrics["fine_tuned"]


def test_a_second_run_on_the_same_out_stops_at_once(finished: Finished, tmp_path: Path) -> None:
    import signal
    import socket
    import subprocess
    import sys
    import time

    cfg = copy_run(finished, tmp_path)
    # A real second process holds the run directory's lock.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from ragtune.rundir import RunLock; "
            "RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(120)",
            str(cfg.out),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        start = time.monotonic()
        with pytest.raises(RunDirError) as e:
            Pipeline(cfg).run()
        assert time.monotonic() - start < 10
        since = json.loads((cfg.out / "work" / "run.lock").read_text())["started"]
        assert str(e.value) == (
            f"{cfg.out} is in use by another ragtune run (pid {holder.pid} on "
            f"{socket.gethostname()}, since {since}); wait for it to finish or use another "
            "--out directory"
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # Killed, it left its lock file behind: stale now, the same command takes it over and completes.
    assert json.loads((cfg.out / "work" / "run.lock").read_text())["pid"] == holder.pid
    rec = Recorder()
    assert Pipeline(cfg, rec).run().cached == list(STAGES)
    assert len(rec.notes) == 1 and rec.notes[0].startswith(
        f"took over a stale run.lock left by a run that ended without releasing it (pid {holder.pid} on "
    )
    assert not (cfg.out / "work" / "run.lock").exists()


def test_stale_lock_file_of_a_dead_process_is_taken_over(finished: Finished, tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = copy_run(finished, tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)
    (cfg.out / "work" / "run.lock").write_text(json.dumps({"pid": pid, "host": "elsewhere", "started": "yesterday"}))
    rec = Recorder()
    assert Pipeline(cfg, rec).run().cached == list(STAGES)
    assert rec.notes == [
        f"took over a stale run.lock left by a run that ended without releasing it (pid {pid} on "
        "elsewhere, since yesterday)"
    ]
