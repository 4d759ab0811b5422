"""Records and their versioned JSONL form; atomic writes; the skip SkipCounter."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ragtune.fileio import atomic_write_text, read_json, write_json
from ragtune.records import (
    FORMAT_VERSION,
    Chunk,
    LabelledPair,
    Page,
    Pair,
    RunDirError,
    SkipCounter,
    read_jsonl,
    write_jsonl,
)

# One list per record type, with the awkward values a real run produces:
# non-ASCII text, embedded newlines and quotes, empty tuples, multi-page chunks.
SAMPLES = {
    Page: [
        Page("a.pdf", 1, "Résumé of “GAI” risks.\nSecond line."),
        Page("sub/b.txt", 12, 'He said "stop" \\ then left.'),
    ],
    Chunk: [
        Chunk("c-1", "a.pdf", (3, 4), "Text spanning\n\na page break — ✓", 11, ("privacy", "data")),
        Chunk("c-2", "a.pdf", (5,), "Unthemed.", 2),
    ],
    Pair: [
        Pair("What is confabulation?", "c-1", "offline", "sentence"),
        Pair("zero trust", "c-2", "template"),
    ],
    LabelledPair: [
        LabelledPair("a cat", "a kitten", 0.9),
        LabelledPair("a cat", "tax law", 0.0),
    ],
}
KINDS = {Page: "page", Chunk: "chunk", Pair: "pair", LabelledPair: "labelled_pair"}


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_jsonl_round_trip(tmp_path: Path, cls: type) -> None:
    path = tmp_path / "deep" / "records.jsonl"
    n = write_jsonl(path, SAMPLES[cls], cls)
    assert n == len(SAMPLES[cls])
    assert read_jsonl(path, cls) == SAMPLES[cls]


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_jsonl_is_one_record_a_line_and_nothing_else(tmp_path: Path, cls: type) -> None:
    path = tmp_path / "r.jsonl"
    write_jsonl(path, SAMPLES[cls], cls)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [json.loads(json.dumps(dataclasses.asdict(r))) for r in SAMPLES[cls]]


def test_pandas_and_datasets_read_the_files_as_they_are(tmp_path: Path) -> None:
    import pandas as pd
    from datasets import load_dataset

    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, SAMPLES[Pair], Pair)
    frame = pd.read_json(path, lines=True)
    assert list(frame.columns) == ["query", "chunk_id", "generator", "kind"]
    assert frame["query"].tolist() == [p.query for p in SAMPLES[Pair]]
    data = load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert data.column_names == ["query", "chunk_id", "generator", "kind"] and len(data) == len(SAMPLES[Pair])


def test_round_trip_keeps_tuples_and_unicode(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    write_jsonl(path, SAMPLES[Chunk], Chunk)
    first = read_jsonl(path, Chunk)[0]
    assert first.pages == (3, 4) and isinstance(first.pages, tuple)
    assert first.themes == ("privacy", "data") and isinstance(first.themes, tuple)
    # Written as real UTF-8, not \u escapes, so the file stays readable.
    assert "✓" in path.read_text(encoding="utf-8")


def test_empty_record_list_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "none.jsonl"
    assert write_jsonl(path, [], Pair) == 0
    assert read_jsonl(path, Pair) == []


def test_unknown_fields_are_ignored_and_defaults_filled(tmp_path: Path) -> None:
    # A record from a newer writer with an extra field, and one without the optional `kind`.
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"query": "q one", "chunk_id": "c", "generator": "g", "kind": "k", "extra": 1})
        + "\n"
        + json.dumps({"query": "q two", "chunk_id": "c", "generator": "g"})
        + "\n\n",
        encoding="utf-8",
    )
    assert read_jsonl(path, Pair) == [Pair("q one", "c", "g", "k"), Pair("q two", "c", "g", "")]


def test_wrong_record_kind_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "chunks.jsonl"
    write_jsonl(path, SAMPLES[Chunk], Chunk)
    with pytest.raises(RunDirError) as e:
        read_jsonl(path, Pair)
    assert str(path) in str(e.value)
    assert "not a ragtune pair file" in str(e.value)


@pytest.mark.parametrize("version", [1, 0, None])
def test_a_file_with_a_header_line_from_ragtune_0_2_is_a_clear_error(tmp_path: Path, version: object) -> None:
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, SAMPLES[Pair], Pair)
    header = {"ragtune": "pair"} if version is None else {"ragtune": "pair", "version": version}
    path.write_text(json.dumps(header) + "\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(RunDirError) as e:
        read_jsonl(path, Pair)
    msg = str(e.value)
    assert str(path) in msg
    assert f"format version {version!r}" in msg
    assert f"reads version {FORMAT_VERSION}" in msg
    assert "--out" in msg  # says what to do


@pytest.mark.parametrize(
    "content",
    ["not json at all\n", '["ragtune", "pair"]\n', '{"question": "q", "answer": "a"}\n', "\xff\xfe"],
    ids=["garbage", "list", "foreign-records", "binary"],
)
def test_a_foreign_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(RunDirError, match="not a ragtune pair file|unreadable pair record") as e:
        read_jsonl(path, Pair)
    assert str(path) in str(e.value)


def test_missing_file_is_a_run_dir_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="is missing"):
        read_jsonl(tmp_path / "nope.jsonl", Chunk)
    with pytest.raises(RunDirError, match="is missing"):
        read_json(tmp_path / "nope.json")


@pytest.mark.parametrize(
    "bad_line",
    ['{"query": "q", "chunk_id": "c"', '{"query": "q", "generator": "g"}'],
    ids=["truncated-json", "missing-field"],
)
def test_unreadable_record_names_file_and_line(tmp_path: Path, bad_line: str) -> None:
    path = tmp_path / "pairs.jsonl"
    good = json.dumps({"query": "q", "chunk_id": "c", "generator": "g"})
    path.write_text("\n".join([good, good, good, bad_line]) + "\n", encoding="utf-8")
    with pytest.raises(RunDirError) as e:
        read_jsonl(path, Pair)
    assert f"{path}:4:" in str(e.value)
    assert "unreadable pair record" in str(e.value)


def test_json_round_trip_and_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    obj = {"hit@5": 0.5, "names": ["é", "b"], "nested": {"x": [1, 2]}}
    write_json(path, obj)
    assert read_json(path) == obj
    path.write_text('{"a": 1,\n "b": }', encoding="utf-8")
    with pytest.raises(RunDirError) as e:
        read_json(path)
    assert str(path) in str(e.value) and "not valid JSON" in str(e.value) and "line 2" in str(e.value)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dir" / "file.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second ✓")
    assert target.read_text(encoding="utf-8") == "second ✓"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]


def test_atomic_write_failure_keeps_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    atomic_write_text(target, "old content")
    # A lone surrogate cannot be encoded as UTF-8: the write fails half-way.
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "new content \ud800")
    assert target.read_text(encoding="utf-8") == "old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_write_jsonl_failure_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, SAMPLES[Pair], Pair)
    with pytest.raises(TypeError):
        # A record of the wrong type fails before anything is written.
        write_jsonl(path, [object()], Pair)
    assert read_jsonl(path, Pair) == SAMPLES[Pair]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl"]


def test_write_jsonl_rejects_non_record_class(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a record type"):
        write_jsonl(tmp_path / "x.jsonl", [], dict)


def test_counter_counts_reasons_and_caps_examples() -> None:
    c = SkipCounter()
    assert c.total() == 0 and c.to_dict() == {"counts": {}, "examples": {}}
    for i in range(7):
        c.add("empty page", f"a.pdf p{i}")
    c.add("too short", n=3)
    c.add("too short", "x")
    assert c.counts == {"empty page": 7, "too short": 4}
    assert c.total() == 11
    # Examples are kept for inspection but capped at 5; an empty example is not stored.
    assert c.examples == {"empty page": [f"a.pdf p{i}" for i in range(5)], "too short": ["x"]}


def test_counter_to_dict_is_a_json_safe_copy() -> None:
    c = SkipCounter()
    c.add("dup", "e1")
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == {"counts": {"dup": 1}, "examples": {"dup": ["e1"]}}
    d["counts"]["dup"] = 99
    d["examples"]["dup"].append("mutated")
    assert c.counts == {"dup": 1} and c.examples == {"dup": ["e1"]}


def test_written_files_follow_the_umask_like_any_other_file(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        write_jsonl(tmp_path / "p.jsonl", SAMPLES[Pair], Pair)
        (tmp_path / "plain.txt").write_text("x")
        expected = (tmp_path / "plain.txt").stat().st_mode & 0o777
        assert expected == 0o644
        assert (tmp_path / "m.json").stat().st_mode & 0o777 == expected
        assert (tmp_path / "p.jsonl").stat().st_mode & 0o777 == expected
        os.umask(0o077)
        write_json(tmp_path / "private.json", {"a": 1})
        assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
