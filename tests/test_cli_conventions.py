"""What a user types and reads (issue 31): the base-vector cache of `search --compare`, readable objects and
scores that say what they are, `search` output, CLI conventions, and errors in the words the user typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune import Config
from ragtune.cli import main
from tests.support.runs import finished_tiny_run
from tests.test_hub import TOKEN, hubserver, make_run  # noqa: F401  (hubserver: the fake Hub, a fixture)
from tests.test_search import QUERY, encoded_texts, write_pdfs


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A tiny run whose chunks (128 tokens) made it raise the model's max_seq_length from 128 to 130,
    saved by sentence-transformers 6, which keeps that length out of sentence_bert_config.json."""
    root = tmp_path_factory.mktemp("conventions")
    return finished_tiny_run(root, write_pdfs(root / "docs"), tiny_model_dir, chunk_tokens=128)


# --- 1. the base-vector cache of search --compare ----------------------------------------


def test_search_compare_reuses_the_saved_base_vectors_after_a_raised_max_seq_length(
    long_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
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
    long_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from ragtune.search import load_retriever

    copy = tmp_path / "run"
    shutil.copytree(long_run, copy)
    settings = json.loads((copy / "index" / "retriever.json").read_text())
    (copy / "index" / "retriever.json").write_text(
        json.dumps({k: v for k, v in settings.items() if k != "max_seq_length"})
    )
    seen = encoded_texts(monkeypatch)
    base = load_retriever(copy, "base", device="cpu")
    assert base.model.max_seq_length == 130 and seen == []


# --- 2. readable objects, scores that say what they are ---------------------------------


@pytest.fixture(scope="module")
def retriever(long_run: Path):
    from ragtune.search import load_retriever

    return load_retriever(long_run, "tuned", device="cpu")


def test_hits_say_what_their_score_is(retriever) -> None:
    dense = {h.chunk_id: h for h in retriever.search(QUERY, k=len(retriever.chunks), mode="dense")}
    bm25 = {h.chunk_id: h for h in retriever.search(QUERY, k=len(retriever.chunks), mode="bm25")}
    assert {h.kind for h in dense.values()} == {"cosine"} and {h.kind for h in bm25.values()} == {"bm25"}
    # A dense hit is all model, a BM25 hit all BM25.
    assert all(h.dense == h.score and h.bm25 is None for h in dense.values())
    assert all(h.bm25 == h.score and h.dense is None for h in bm25.values())
    hybrid = retriever.search(QUERY, k=5, mode="hybrid")
    assert {h.kind for h in hybrid} == {"hybrid"}
    assert hybrid[0].score == pytest.approx(1.0, abs=0.51), "the hybrid score is a within-query rank score"
    for h in hybrid:
        # Its parts are the raw cosine and BM25 score of the same chunk, where that list returned it.
        assert h.dense is None or h.dense == pytest.approx(dense[h.chunk_id].score, abs=1e-5)
        assert h.bm25 is None or h.bm25 == pytest.approx(bm25[h.chunk_id].score, abs=1e-5)
        assert h.dense is not None or h.bm25 is not None


def test_hit_prints_like_the_cli_and_reprs_without_its_text(retriever) -> None:
    from ragtune.search import Hit

    hit = retriever.search(QUERY, k=1, mode="dense")[0]
    lines = str(hit).splitlines()
    assert lines[0].startswith(f" 1. {hit.score:.3f} cosine  {hit.source} p") and 2 <= len(lines) <= 3
    assert all(len(line) <= 80 for line in lines), lines
    r = repr(hit)
    assert len(r) <= 200 and r.startswith("Hit(rank=1, ") and hit.text not in r and "kind='cosine'" in r
    long = Hit(1, 0.5, "c-1", "a.pdf", (1,), "word " * 400)
    assert len(repr(long)) <= 200 and len(str(long)) <= 3 * 81


def test_retriever_repr_is_one_short_line(retriever, long_run: Path) -> None:
    r = repr(retriever)
    assert r == (
        f"Retriever(run={str(long_run)!r}, mode={retriever.mode!r}, chunks={len(retriever.chunks)}, "
        f"rows={retriever.index.index.ntotal}, model={str(long_run / 'model')!r})"
    )


def test_config_repr_names_only_what_differs_from_the_defaults() -> None:
    r = repr(Config(docs=Path("docs"), epochs=3, chunk_tokens=128))
    assert r == "Config(docs='docs', out='runs/latest', chunk_tokens=128, epochs=3)"
    assert repr(Config(docs=Path("docs"))) == "Config(docs='docs', out='runs/latest')"


def test_run_result_prints_its_metrics_as_a_table(long_run: Path) -> None:
    from ragtune.pipeline import RunResult

    metrics = json.loads((long_run / "metrics.json").read_text())
    table = RunResult(long_run, metrics, {}).table().splitlines()
    assert table[0].split() == ["hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"]
    row = next(line for line in table if line.startswith("fine-tuned "))
    assert row.split()[-1] == f"{metrics['fine_tuned']['mrr@10']:.3f}"
    assert any(line.startswith("base ") for line in table) and any(line.startswith("hybrid") for line in table)


SIM = {
    "warn": True,
    "base": {"median": 0.6, "p10": 0.4},
    "fine_tuned": {"median": 0.4, "p10": 0.2},
    "cutoff_map": {"0.5": 0.3},
}


def test_cutoff_advice_speaks_of_cosine_cutoffs_only_for_dense_vectors(capsys: pytest.CaptureFixture[str]) -> None:
    from ragtune.card import _similarity_section
    from ragtune.cli import _print_advice

    m = {"fine_tuned": {"hit@5": 0.5, "mrr@10": 0.4}, "base": {"hit@5": 0.4, "mrr@10": 0.3}, "similarity": SIM}
    _print_advice(m, Path("runs/demo/report.html"))
    for text in (capsys.readouterr().out, _similarity_section(m)):
        assert "dense" in text and "vector store" in text, text
        assert "hybrid" in text.lower() and "within one query" in text, text


# --- 3. search output in 80 columns, and --json -----------------------------------------


def test_search_output_fits_80_columns_and_heads_its_scale(
    long_run: Path, retriever, capsys: pytest.CaptureFixture[str]
) -> None:
    for mode, scale in (("dense", "cosine"), ("hybrid", "within one query"), ("bm25", "BM25")):
        assert main(["search", str(long_run), QUERY, "-k", "3", "--mode", mode, "--device", "cpu"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert all(len(line) <= 80 for line in out), "\n".join(out)
        assert mode in out[0] and scale in out[0], out[0]
        hits = retriever.search(QUERY, k=3, mode=mode)
        starts = [i for i, line in enumerate(out) if line[:4] in (" 1. ", " 2. ", " 3. ")]
        assert len(starts) == 3
        for i, hit in zip(starts, hits):
            assert out[i].startswith(f"{hit.rank:>2}. {hit.score:.3f}") and hit.source in out[i]
        # Two to three lines a hit, the text wrapped rather than cut at 45 characters.
        assert all(2 <= b - a <= 3 for a, b in zip(starts, starts[1:] + [len(out)]))
        assert all(len(out[i + 1].strip()) > 50 for i in starts)


def test_search_compare_fits_80_columns_with_each_column_headed(
    long_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", str(long_run), QUERY, "-k", "3", "--compare", "--mode", "dense", "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in out), "\n".join(out)
    head = next(line for line in out if "fine-tuned" in line)
    assert head.count("dense") == 2 and head.count("cosine") == 2, head
    starts = [i for i, line in enumerate(out) if line[:4] in (" 1. ", " 2. ", " 3. ")]
    assert len(starts) == 3 and all(b - a == 3 for a, b in zip(starts, starts[1:]))


def test_search_json(long_run: Path, retriever, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(long_run), QUERY, "-k", "3", "--mode", "hybrid", "--json", "--device", "cpu"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["query"] == QUERY and data["mode"] == "hybrid"
    hits = retriever.search(QUERY, k=3, mode="hybrid")
    got = data["results"]["fine-tuned"]
    assert [(h["rank"], h["chunk_id"], h["kind"], h["pages"]) for h in got] == [
        (h.rank, h.chunk_id, "hybrid", list(h.pages)) for h in hits
    ]
    assert got[0]["score"] == pytest.approx(hits[0].score) and got[0]["text"] == hits[0].text
    assert "within one query" in data["score"]
    assert main(["search", str(long_run), QUERY, "-k", "2", "--json", "--compare", "--device", "cpu"]) == 0
    both = json.loads(capsys.readouterr().out)["results"]
    assert set(both) == {"base", "fine-tuned"} and all(len(v) == 2 for v in both.values())


# --- 4. CLI conventions ------------------------------------------------------------------

COMMANDS = ["run", "search", "evaluate", "export", "push", "pairs", "similarity"]


def subparsers() -> dict:
    import argparse

    from ragtune.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices


def test_bare_ragtune_prints_the_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ragtune") and "search" in out and "error" not in out


def test_top_level_help_lists_commands_in_workflow_order_and_the_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    listed = [
        line.split()[0]
        for line in out.splitlines()
        if line.startswith("    ") and line.split() and line.split()[0] in COMMANDS
    ]
    assert listed == COMMANDS, out
    assert "exit codes" in out.lower()
    for code in ("0", "1", "2", "130", "143"):
        assert any(line.strip().startswith(code + " ") for line in out.splitlines()), code


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_help_has_an_example_one_default_each_and_explicit_metavars(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    example = out.split("example", 1)[-1] if "example" in out.lower() else ""
    assert f"ragtune {command} " in example, out
    import re

    assert not re.search(r"\(default: [^)]*\)\s*\(default:", " ".join(out.split())), out
    assert "''" not in out, "'' is no value a user should type"
    _, parsers = subparsers()
    for action in parsers[command]._actions:
        if action.option_strings and action.nargs != 0 and action.choices is None:
            assert action.metavar is not None, f"{command} {action.option_strings[0]} has no explicit metavar"


def test_defaults_are_shown_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 5)" in out and "(default: 5) (default: 5)" not in out


def test_auto_for_base_model_and_device_and_the_config_takes_both() -> None:
    _, parsers = subparsers()
    run = {a.dest: a for a in parsers["run"]._actions}
    assert run["base_model"].default == "auto" and run["device"].default == "auto"
    for command in ("search", "evaluate", "pairs", "similarity"):
        device = next(a for a in parsers[command]._actions if a.dest == "device")
        assert device.default == "auto", command
    assert Config(docs=Path("d"), base_model="auto", device="auto") == Config(docs=Path("d"))
    from ragtune.models import pick_device, resolve_base_model

    assert pick_device("auto") == pick_device("") and resolve_base_model("auto") == resolve_base_model("")


def test_abbreviated_flags_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", str(tmp_path), "--epoch", "3"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --epoch" in err and "did you mean --epochs?" in err
    with pytest.raises(SystemExit):
        main(["run", str(tmp_path), "--epoch", "3", "--hard"])
    assert "did you mean --epochs for --epoch, --hard-negatives for --hard?" in capsys.readouterr().err


def test_a_bad_flag_prints_the_subcommands_own_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["search", str(tmp_path), "q", "--modes", "dense"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ragtune search ") and "did you mean --mode?" in err


def test_a_mistyped_subcommand_gets_a_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["serch", "runs/x", "q"])
    assert e.value.code == 2
    assert "did you mean 'search'?" in capsys.readouterr().err


def test_a_mistyped_folder_gets_a_did_you_mean(
    tmp_path: Path, long_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_cli import assert_one_error_line

    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "a.txt").write_text("Some words about zero trust. " * 20)
    assert main(["run", str(tmp_path / "documnets"), "--out", str(tmp_path / "run")]) == 1
    assert_one_error_line(capsys.readouterr().err, f"did you mean {tmp_path / 'documents'}?")
    assert main(["search", str(long_run.parent / "rnu"), QUERY]) == 1
    assert_one_error_line(capsys.readouterr().err, f"did you mean {long_run}?")


# --- 5. errors in the words the user typed ------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--hybrid-weight", "1.5"], "--hybrid-weight must be between 0 and 1"),
        (["--chunk-overlap", "200"], "--chunk-overlap must be >= 0 and less than half of --chunk-tokens"),
    ],
)
def test_run_errors_name_the_flag_typed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    from tests.test_cli import assert_one_error_line

    assert main(["run", str(tmp_path), "--out", str(tmp_path / "run"), *argv]) == 1
    line = assert_one_error_line(capsys.readouterr().err, words)
    assert "hybrid_weight" not in line and "chunk_overlap" not in line


def test_pairs_errors_name_the_flag_typed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_cli import assert_one_error_line

    (tmp_path / "p.csv").write_text("sentence1,sentence2,label\na,b,1\n")
    assert main(["pairs", str(tmp_path / "p.csv"), "--out", str(tmp_path / "r"), "--test-fraction", "2"]) == 1
    line = assert_one_error_line(capsys.readouterr().err, "--test-fraction")
    assert "eval_fraction" not in line


def test_a_documents_folder_given_as_a_run_gets_the_right_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_cli import assert_one_error_line

    docs = write_pdfs(tmp_path / "docs")
    assert main(["search", str(docs), QUERY]) == 1
    line = assert_one_error_line(
        capsys.readouterr().err, f"{docs} holds documents, not a ragtune run", f"ragtune run {docs} --out "
    )
    assert f"--out {docs}" not in line, "advice to write a run into the user's documents"


def test_a_folder_of_word_html_and_powerpoint_files_gets_a_way_forward(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_cli import assert_one_error_line

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a.docx", "b.html", "c.pptx"):
        (docs / name).write_bytes(b"PK\x03\x04 not really")
    assert main(["run", str(docs), "--out", str(tmp_path / "run")]) == 1
    assert_one_error_line(capsys.readouterr().err, "convert", "PDF", "soffice --headless --convert-to pdf")


def test_hub_retry_lines_look_like_every_other_line(
    hubserver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ragtune import hub

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(hub.calls, "MAX_BACKOFF_S", 0.01)
    hubserver.state.fail_next("create", 503)
    assert main(["push", str(make_run(tmp_path, improved=True)), "alice/minilm"]) == 0
    err = capsys.readouterr().err
    retry = [line for line in err.splitlines() if "retrying" in line]
    assert retry and all(line.startswith("ragtune: Hub call failed") for line in retry), err
    assert "WARNING" not in err


# --- 6. one name per idea -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "new", "dest", "value"),
    [
        (["run", "docs", "--evals", "3"], "--validations", "evals", 3),
        (["run", "docs", "--eval-fraction=0.3"], "--test-fraction", "eval_fraction", 0.3),
        (["pairs", "p.csv", "--eval-fraction", "0.3"], "--test-fraction", "eval_fraction", 0.3),
        (["pairs", "p.csv", "--loss", "cosent"], "--pairs-loss", "loss", "cosent"),
    ],
)
def test_old_flag_names_still_work_with_a_deprecation_line(
    argv: list[str], new: str, dest: str, value: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from ragtune.cli import parse_command_line

    args = parse_command_line(argv)
    assert getattr(args, dest) == value
    err = capsys.readouterr().err
    old = argv[2].split("=")[0]
    assert err.strip() == f"ragtune: {old} is deprecated and will go in the next release; use {new}"
    renamed = [new + ("=" + argv[2].split("=")[1] if "=" in argv[2] else ""), *argv[3:]]
    assert getattr(parse_command_line([*argv[:2], *renamed]), dest) == value
    assert capsys.readouterr().err == ""


def test_run_push_takes_the_publish_flags_of_push() -> None:
    from ragtune.cli import parse_command_line

    run = parse_command_line(["run", "docs", "--push", "me/m", "--with-data", "--force-push", "--timeout", "5"])
    push = parse_command_line(["push", "runs/x", "me/m", "--with-data", "--force-push", "--timeout", "5"])
    for args in (run, push):
        assert (args.with_data, args.force, args.timeout) == (True, True, 5.0)
    assert parse_command_line(["push", "runs/x", "me/m", "--force"]).force


def test_multi_file_flags_repeat_like_every_other(capsys: pytest.CaptureFixture[str]) -> None:
    from ragtune.cli import parse_command_line

    # (PAIRS files go before it: for one release the flag still takes every file that follows it.)
    args = parse_command_line(["pairs", "p.csv", "--alternatives", "a.csv", "--alternatives", "b.csv"])
    assert args.alternatives == [Path("a.csv"), Path("b.csv")] and args.pairs_files == [Path("p.csv")]
    assert capsys.readouterr().err == ""
    # The old form, several files after one flag, still reads, with a deprecation line.
    args = parse_command_line(["pairs", "--alternatives", "a.csv", "b.csv"])
    assert args.alternatives == [Path("a.csv"), Path("b.csv")]
    assert "repeat the flag" in capsys.readouterr().err


def test_framework_documents_carry_the_score_kind(retriever) -> None:
    pytest.importorskip("langchain_core")
    docs = retriever.as_langchain(k=2, mode="hybrid").invoke(QUERY)
    assert [d.metadata["score_kind"] for d in docs] == ["hybrid", "hybrid"]
    assert docs[0].metadata["score"] == pytest.approx(retriever.search(QUERY, k=1, mode="hybrid")[0].score)
