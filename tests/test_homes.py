"""Issue 27, names and homes: one Unicode word tokenizer for every generator, and the twins made one."""

from __future__ import annotations

from ragtune.generators.lexical import terms
from ragtune.generators.offline import _phrases
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

