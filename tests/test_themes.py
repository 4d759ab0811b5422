"""Keyword themes: matching worked by hand, unthemed chunks kept, lexicon files and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragtune.records import Chunk
from ragtune.themes import DEFAULT_LEXICON, ThemesError, load_lexicon, tag_chunks

LEXICON = {
    "security": ["attack*", "malware", "zero trust"],
    "privacy": ["PII", "personal data", "anonymiz*"],
    "evaluation": ["red team*", "evaluat*"],
    "safety": ["safe"],
}


def chunk(text: str, cid: str = "c") -> Chunk:
    return Chunk(cid, "doc.pdf", (1,), text, len(text.split()))


def themes_of(text: str, lexicon: dict[str, list[str]] = LEXICON) -> tuple[str, ...]:
    return tag_chunks([chunk(text)], lexicon).chunks[0].themes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Stems ("attack*") match any ending, in any case.
        ("Attackers probed the network.", ("security",)),
        ("An ATTACK surface grows.", ("security",)),
        ("The attack.", ("security",)),
        # ... but only at the start of a word.
        ("A counterattack followed.", ()),
        # Plain keywords are whole words.
        ("Malware spread.", ("security",)),
        ("Malwares spread.", ()),
        ("Is it safe?", ("safety",)),
        ("A safeguard is in place.", ()),
        ("Unsafe defaults.", ()),
        # Acronyms match case-insensitively, as whole words.
        ("Remove PII first.", ("privacy",)),
        ("remove pii first.", ("privacy",)),
        ("The PIIX chip.", ()),
        # Multi-word keywords tolerate line breaks and hyphens between the words.
        ("Handle personal\ndata with care.", ("privacy",)),
        ("A zero-trust design.", ("security",)),
        ("Red-teaming found flaws.", ("evaluation",)),
        ("The red team reported.", ("evaluation",)),
        ("Personal opinions and data.", ()),
        ("Anonymized records; we evaluate them.", ("privacy", "evaluation")),
        ("Nothing relevant here at all.", ()),
    ],
)
def test_keyword_matching(text: str, expected: tuple[str, ...]) -> None:
    assert themes_of(text) == expected


def test_a_chunk_gets_every_matching_theme_in_lexicon_order() -> None:
    text = "Evaluators ran red-team attacks to check that PII stays safe."
    assert themes_of(text) == ("security", "privacy", "evaluation", "safety")


def test_unthemed_chunks_are_kept_and_counted() -> None:
    chunks = [
        chunk("Attackers stole personal data.", "c1"),
        chunk("The weather was mild.", "c2"),
        chunk("We evaluated the malware.", "c3"),
        chunk("Lunch is at noon.", "c4"),
    ]
    result = tag_chunks(chunks, LEXICON)
    assert [c.id for c in result.chunks] == ["c1", "c2", "c3", "c4"]
    assert [c.themes for c in result.chunks] == [("security", "privacy"), (), ("security", "evaluation"), ()]
    assert result.unthemed == 2
    # Every theme is listed, also those that matched nothing.
    assert result.per_theme == {"security": 2, "privacy": 1, "evaluation": 1, "safety": 0}
    # Only themes change; text, ids and pages are untouched, and the input is not modified.
    for before, after in zip(chunks, result.chunks):
        assert (before.id, before.text, before.pages) == (after.id, after.text, after.pages)
        assert before.n_tokens == after.n_tokens
    assert all(c.themes == () for c in chunks)


def test_retagging_replaces_old_themes() -> None:
    old = Chunk("c", "a", (1,), "Malware everywhere.", 2, ("stale theme",))
    assert tag_chunks([old], LEXICON).chunks[0].themes == ("security",)


def test_default_lexicon_on_policy_text() -> None:
    text = "Organizations should red-team generative AI systems, audit training data for bias, and disclose incidents."
    themes = set(themes_of(text, DEFAULT_LEXICON))
    assert {
        "evaluation",
        "generative AI",
        "governance",
        "data",
        "fairness",
        "transparency",
        "incident response",
    } <= themes
    assert "privacy" not in themes and "intellectual property" not in themes


def test_special_characters_in_keywords_are_literal() -> None:
    lexicon = {"cpp": ["C++"], "dotted": ["e.g"], "star": ["multi*"]}
    assert themes_of("Written in C++ today.", lexicon) == ("cpp",)
    assert themes_of("Written in C today.", lexicon) == ()
    assert themes_of("For exg, no.", lexicon) == ()  # "." is not a wildcard
    assert themes_of("Multimodal.", lexicon) == ("star",)


# --- lexicon files --------------------------------------------------------------------


def test_load_yaml(tmp_path: Path) -> None:
    path = tmp_path / "themes.yaml"
    path.write_text("security:\n  - attack*\n  - ' malware '\nprivacy: PII\n", encoding="utf-8")
    assert load_lexicon(path) == {"security": ["attack*", "malware"], "privacy": ["PII"]}


def test_load_yml_and_toml_give_the_same_lexicon(tmp_path: Path) -> None:
    yml = tmp_path / "t.YML"
    yml.write_text('zero trust:\n  - zero trust\n  - micro-segment*\n"2024": ["year"]\n', encoding="utf-8")
    toml = tmp_path / "t.toml"
    toml.write_text('"zero trust" = ["zero trust", "micro-segment*"]\n"2024" = ["year"]\n', encoding="utf-8")
    expected = {"zero trust": ["zero trust", "micro-segment*"], "2024": ["year"]}
    assert load_lexicon(yml) == expected == load_lexicon(toml)


def test_loaded_lexicon_tags_chunks(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('network = ["micro-segment*", "zero trust"]\n', encoding="utf-8")
    result = tag_chunks([chunk("Micro-segmentation limits lateral movement.")], load_lexicon(path))
    assert result.chunks[0].themes == ("network",) and result.unthemed == 0


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("bad.yaml", "security:\n  - attack*\n privacy: [PII\n", 3),
        ("bad.yml", "security: [attack*\nprivacy: [PII]\n", 2),
        ("bad.toml", 'security = ["attack*"]\nprivacy = [PII]\n', 2),
        ("bad2.toml", 'security = ["attack*"]\nsecurity = ["malware"]\n', 2),
    ],
)
def test_syntax_errors_name_the_file_and_line(tmp_path: Path, name: str, content: str, line: int) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ThemesError) as e:
        load_lexicon(path)
    msg = str(e.value)
    assert str(path) in msg
    assert f"line {line}" in msg
    assert "\n" not in msg  # one line for the CLI


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("security:\n  - attack*\nprivacy:\n", "privacy"),  # null
        ("security: []\n", "security"),
        ("security:\n  - attack*\n  - 42\n", "security"),
        ("security:\n  - ''\n", "security"),
        ("security:\n  nested: map\n", "security"),
    ],
)
def test_bad_keyword_lists_name_the_theme(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ThemesError) as e:
        load_lexicon(path)
    assert str(path) in str(e.value)
    assert repr(key) in str(e.value)
    assert "list of keyword" in str(e.value)


@pytest.mark.parametrize("content", ["", "- attack*\n- malware\n", "just a string\n", "{}\n"])
def test_file_that_is_not_a_mapping(tmp_path: Path, content: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ThemesError, match="must map each theme to a list of keywords") as e:
        load_lexicon(path)
    assert str(path) in str(e.value)


def test_toml_with_non_list_value_names_the_theme(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("security = 3\n", encoding="utf-8")
    with pytest.raises(ThemesError, match="'security'"):
        load_lexicon(path)


def test_unsupported_suffix_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "themes.json"
    path.write_text('{"security": ["attack*"]}', encoding="utf-8")
    with pytest.raises(ThemesError, match=r"must end in \.yaml, \.yml or \.toml") as e:
        load_lexicon(path)
    assert str(path) in str(e.value)
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ThemesError, match="cannot read themes file") as e:
        load_lexicon(missing)
    assert str(missing) in str(e.value)
