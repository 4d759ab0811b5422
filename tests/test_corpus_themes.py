"""Themes from the corpus itself: without --themes, an HR handbook and a product manual each get themes of
their own that cover their chunks; a user's themes file still wins; the theme stage records what it derived."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragtune import Config
from ragtune.records import Chunk, read_jsonl, write_jsonl
from ragtune.runfiles import RunFiles
from ragtune.themes import DEFAULT_LEXICON, MAX_SHARE, derive_lexicon, load_lexicon, tag_chunks

HR_HANDBOOK = [
    "Annual leave is 25 days a year. Book annual leave with your line manager at least two weeks ahead.",
    "Unused annual leave of up to five days carries over to the next year; the rest lapses on 31 March.",
    "Sick leave: tell your line manager before 10am on the first day of absence and each day after.",
    "After seven days of sick leave a doctor's fit note is needed; sick pay is full salary for 12 weeks.",
    "Parental leave of 26 weeks at full salary is open to every parent after six months of service.",
    "Overtime is paid at 1.5 times the hourly rate when your line manager approved it in advance.",
    "Overtime on a public holiday is paid at twice the hourly rate, or taken back as time off in lieu.",
    "Expense claims go through the expenses portal within 30 days, with a receipt for every item.",
    "Expense claims for travel cover economy rail fares and mileage at 45p a mile for the first 10,000 miles.",
    "The performance review is held twice a year: you and your line manager agree goals for the next half.",
    "A performance review rating of 'exceeds' makes you eligible for the annual bonus pool.",
    "Remote work is allowed up to three days a week; the office is the place of work on team days.",
    "Remote work equipment (a laptop, a monitor and a chair) is provided; report faults to the IT desk.",
    "The code of conduct forbids harassment, bullying and discrimination; report concerns to HR in confidence.",
    "Breaches of the code of conduct lead to the disciplinary procedure, which starts with an investigation.",
    "The pension scheme matches your contribution up to 6% of salary from the first month of employment.",
]
PRODUCT_MANUAL = [
    "Charge the battery fully before first use: connect the charging cable and wait until the battery light is green.",
    "A full battery lasts about 90 minutes; the battery light blinks red when ten minutes are left.",
    "Never charge the battery above 40 degrees; the charging dock stops charging when it overheats.",
    "Wi-Fi setup: press the Wi-Fi button for three seconds, then open the app and choose the robot.",
    "The app shows the cleaning map; the robot needs a 2.4 GHz Wi-Fi network, 5 GHz is not supported.",
    "Firmware update: the app offers a firmware update when one is out; keep the robot on the charging dock.",
    "Do not switch the robot off during a firmware update, or it may not start again.",
    "Error code E1: a side brush is stuck. Remove the side brush, clear the hair and fit it back.",
    "Error code E2: the dust bin is missing. Insert the dust bin until it clicks.",
    "Error code E5: the wheels are blocked. Lift the robot and turn each wheel by hand.",
    "Empty the dust bin after every run, and rinse the filter under the tap once a week; let it dry 24 hours.",
    "Replace the filter every three months; a clogged filter weakens suction and the robot cleans less.",
    "Fill the water tank for mopping; the mop pad must be washed at 40 degrees after each use.",
    "Take the water tank out before charging, so that water does not drip on the charging dock.",
    "The warranty covers defects for two years; the battery warranty is one year from purchase.",
    "For warranty service contact support with the serial number from the label under the robot.",
]


def _chunks(texts: list[str], source: str) -> list[Chunk]:
    return [Chunk(f"{source}-{i}", source, (i + 1,), text, len(text.split())) for i, text in enumerate(texts)]


def _keywords(lexicon: dict[str, list[str]]) -> set[str]:
    return {k.lower() for kws in lexicon.values() for k in kws}


@pytest.mark.parametrize(
    "texts, fits",
    [
        (HR_HANDBOOK, ("leave", "overtime", "expense", "review", "conduct")),
        (PRODUCT_MANUAL, ("battery", "filter", "error", "firmware", "tank")),
    ],
    ids=["hr-handbook", "product-manual"],
)
def test_derived_themes_fit_the_corpus_and_cover_its_chunks(texts, fits):
    lexicon = derive_lexicon(texts)
    assert 3 <= len(lexicon) <= 10, lexicon
    words = " ".join(_keywords(lexicon))
    assert sum(w in words for w in fits) >= 3, lexicon
    tagged = tag_chunks(_chunks(texts, "doc"), lexicon)
    # Each theme marks a reasonable share of the chunks: more than one, less than the corpus's own subject.
    assert all(2 <= n <= MAX_SHARE * len(texts) + 1 for n in tagged.per_theme.values()), tagged.per_theme
    assert tagged.unthemed <= len(texts) // 2, (tagged.unthemed, lexicon)
    # The AI-governance example lexicon leaves more of these chunks unthemed than the corpus's own themes.
    assert tag_chunks(_chunks(texts, "doc"), DEFAULT_LEXICON).unthemed > tagged.unthemed


def test_two_corpora_get_different_themes_and_no_stop_words_or_numbers():
    hr, manual = derive_lexicon(HR_HANDBOOK), derive_lexicon(PRODUCT_MANUAL)
    assert not set(hr) & set(manual) and not _keywords(hr) & _keywords(manual), (hr, manual)
    from ragtune.text import STOPWORDS

    for keyword in _keywords(hr) | _keywords(manual):
        assert not any(ch.isdigit() for ch in keyword), keyword
        assert not all(w in STOPWORDS for w in keyword.split()), keyword
    assert derive_lexicon(HR_HANDBOOK) == hr  # the same corpus, the same themes


class _ThemeRun:
    """What the theme stage reads of a run: its settings, its files and the lexicon of --themes."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.files = RunFiles(cfg.out)

    def lexicon(self) -> dict[str, list[str]]:
        return load_lexicon(self.cfg.themes_file) if self.cfg.themes_file else {}


def test_the_theme_stage_records_derived_themes_and_a_users_file_wins(tmp_path: Path):
    from ragtune.pipeline import Pipeline
    from ragtune.stages.theme import run_stage

    chunks = _chunks(HR_HANDBOOK, "handbook.txt")
    cfg = Config(docs=tmp_path / "docs", out=tmp_path / "run")
    assert Pipeline(cfg).lexicon() == {}  # no --themes: the stage derives them
    files = RunFiles(cfg.out)
    files.work.mkdir(parents=True)
    write_jsonl(files.chunks_raw, chunks, Chunk)

    record = run_stage(_ThemeRun(cfg)).record()
    assert record["lexicon"] == derive_lexicon(HR_HANDBOOK) and "derived from the corpus" in record["themes_from"]
    assert "derived from the corpus" in record["summary"]
    themed = read_jsonl(files.chunks, Chunk)
    assert {t for c in themed for t in c.themes} == {t for t, n in record["per_theme"].items() if n}
    assert set(record["per_theme"]) == set(record["lexicon"])

    own = tmp_path / "themes.yaml"
    own.write_text("pay:\n  - overtime\n  - salary\n  - sick pay\n", encoding="utf-8")
    mine = run_stage(_ThemeRun(cfg.replace(themes_file=own))).record()
    assert (
        mine["lexicon"] == {"pay": ["overtime", "salary", "sick pay"]} and mine["themes_from"] == "from a themes file"
    )
    assert {t for c in read_jsonl(files.chunks, Chunk) for t in c.themes} == {"pay"}


def test_the_ai_governance_example_file_is_the_old_default_lexicon():
    example = Path(__file__).resolve().parents[1] / "docs" / "themes-ai-governance.yaml"
    assert load_lexicon(example) == DEFAULT_LEXICON
