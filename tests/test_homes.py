"""Issue 27, names and homes: one Unicode word tokenizer for every generator, and the twins made one."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragtune.config import Config
from ragtune.errors import NotEnoughDataError
from ragtune.generators.lexical import terms
from ragtune.generators.offline import _phrases
from ragtune.records import LabelledPair, read_jsonl
from ragtune.text import words


def test_words_keep_letters_beyond_ascii_whole() -> None:
    assert words("Qualität, Größe und Ärger") == ["qualität", "größe", "und", "ärger"]


def test_words_on_ascii_text_are_unchanged() -> None:
    # The same tokens as the ASCII tokenizer gave: digits inside, inner hyphens, curly apostrophes made straight.
    assert words("GPT-4 can’t see x2 of 2024 data_set") == ["gpt-4", "can't", "see", "x2", "of", "data", "set"]


def test_generators_see_qualitaet_as_one_word() -> None:
    assert "qualität" in terms("Die Qualität der Datenverarbeitung")
    assert "qualit" not in terms("Die Qualität der Datenverarbeitung")
    assert "qualität datenverarbeitung" in _phrases("Qualität Datenverarbeitung.")


def test_scripts_without_spaces_give_no_words() -> None:
    # A CJK sentence is no term: the split stage then says the offline generator needs spaces.
    assert words("零信任架构检查每一个请求。") == [] and terms("零信任架构 Zero trust") == ["zero", "trust"]


class _LabelledRun:
    """What the train stage's labelled split reads of a run: its config and where its files go."""

    def __init__(self, cfg: Config) -> None:
        from ragtune.runfiles import RunFiles

        self.cfg, self.run_dir = cfg, cfg.out
        self.files = RunFiles(cfg.out)

    def path(self, name: str) -> Path:
        return self.run_dir / name


def _pairs_csv(path: Path, n: int) -> Path:
    rows = [
        f"topic {i} is about {WORDS[i % len(WORDS)]},a note on {WORDS[(i * 7) % len(WORDS)]} {i},{(i % 5) / 4}"
        for i in range(n)
    ]
    path.write_text("sentence1,sentence2,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


WORDS = ["access control", "audit logs", "key rotation", "backups", "phishing", "patching", "encryption"]


def test_run_and_pairs_modes_hold_out_the_same_minimum(tmp_path: Path) -> None:
    # 20 pairs at eval_fraction 0.2 hold out 4: `ragtune pairs` has always taken that, `run --pairs` refused it.
    from ragtune.pairs import split_pairs
    from ragtune.pairs.data import load_pairs_file
    from ragtune.stages.train import _labelled_split

    csv = _pairs_csv(tmp_path / "pairs.csv", 20)
    _, held = split_pairs(load_pairs_file(csv), 0.2, 13)
    assert len(held) == 4
    cfg = Config(docs=tmp_path, out=tmp_path / "run", pairs_files=(csv,), eval_fraction=0.2, seed=13)
    (tmp_path / "run").mkdir()
    train = _labelled_split(_LabelledRun(cfg))
    assert train is not None and len(train) == 16
    assert len(read_jsonl(tmp_path / "run" / "work" / "labelled_test.jsonl", LabelledPair)) == 4


def test_too_few_held_out_labelled_pairs_is_one_clear_error(tmp_path: Path) -> None:
    from ragtune.stages.train import _labelled_split

    csv = _pairs_csv(tmp_path / "pairs.csv", 8)  # 0.2 of 8 holds out 2
    cfg = Config(docs=tmp_path, out=tmp_path / "run", pairs_files=(csv,), eval_fraction=0.2, seed=13)
    (tmp_path / "run").mkdir()
    with pytest.raises(NotEnoughDataError, match="only 2 labelled pairs held out"):
        _labelled_split(_LabelledRun(cfg))
