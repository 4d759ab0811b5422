"""The Hub card of a real run: rendered from its template, a widget of a real question and clean whole sentences,
model details, limitations, versions and citation, and nothing named that the push does not upload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ragtune.card import card_widget, excerpt
from ragtune.cli import main
from ragtune.garbled import reads_clean
from ragtune.records import Chunk, Pair
from tests.conftest import BLUEPRINT_PDF, NIST_PDF
from tests.support.runs import finished_tiny_run

# Page 1 of the Blueprint carries its broken font map ("0ederal 1overnment", "ebisting"); 4-6 of NIST AI 600-1
# are clean.
PAGES = {"blueprint.pdf": (BLUEPRINT_PDF, [0, 1]), "nist.pdf": (NIST_PDF, [4, 5, 6])}
GARBLED = re.compile(r"0ederal|1overnment|ebisting|ebample|re\[uire|/becutive")


def _write_pdfs(folder: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    folder.mkdir(parents=True)
    for name, (source, indices) in PAGES.items():
        reader, writer = PdfReader(source), PdfWriter()
        for i in indices:
            writer.add_page(reader.pages[i])
        with (folder / name).open("wb") as f:
            writer.write(f)
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("card")
    return finished_tiny_run(root, _write_pdfs(root / "docs"), tiny_model_dir)


def _hub_card(text: str, tmp_path: Path):  # noqa: ANN202 - huggingface_hub.ModelCard
    from huggingface_hub import ModelCard

    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    return ModelCard.load(tmp_path / "README.md")


def test_the_card_of_a_run_parses_and_its_widget_is_a_real_question_over_clean_sentences(
    run_dir: Path, tmp_path: Path
) -> None:
    card = _hub_card((run_dir / "model" / "README.md").read_text(encoding="utf-8"), tmp_path)
    (widget,) = card.data.widget
    assert widget["source_sentence"].endswith("?")
    assert len(widget["sentences"]) == 3
    for text in [widget["source_sentence"], *widget["sentences"]]:
        assert reads_clean(text), text
        assert not GARBLED.search(text), text
    for text in widget["sentences"]:  # whole sentences, not a cut-off run of words
        assert text[-1] in '.!?:;)"”', text


def test_the_card_has_model_details_limitations_versions_and_citation(run_dir: Path, tmp_path: Path) -> None:
    import sentence_transformers

    text = (run_dir / "model" / "README.md").read_text(encoding="utf-8")
    assert re.search(r"\| output dimensions \| \d+ \|", text)
    assert "| similarity | cosine |" in text
    assert re.search(r"\| max sequence length \| \d+ tokens \|", text)
    assert "figures are on questions ragtune generated" in text and "expect less on real users'" in text
    assert f"- sentence-transformers: {sentence_transformers.__version__}" in text
    assert "## Citation" in text and "@inproceedings{reimers-2019-sentence-bert" in text
    # Rendered from the template: every placeholder was filled.
    assert "{{" not in text and "}}" not in text


def test_the_uploaded_card_names_nothing_that_is_not_uploaded(run_dir: Path, tmp_path: Path) -> None:
    from ragtune.hub import _card_for_upload, plan_push

    card = _card_for_upload(run_dir, "alice/tuned", None)
    assert card is not None
    text = card.decode()
    uploaded = {rel for rel, _ in plan_push(run_dir, "alice/tuned").files}
    assert "index/" not in text and "ragtune search" not in text and "README's" not in text
    assert str(run_dir) not in text and run_dir.name + "/" not in text
    assert 'SentenceTransformer("alice/tuned")' in text
    assert "README.md" in uploaded and _hub_card(text, tmp_path).data.widget


def test_push_says_what_leaves_the_machine(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", str(run_dir), "alice/tuned", "--dry-run"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (
        "Leaving this machine for alice/tuned: the model weights and the model card (metrics, settings, "
        "3 excerpts of your documents and 1 question in its widget)."
    )


def _chunk(i: int, text: str) -> Chunk:
    return Chunk(id=f"c{i}", text=text, source="a.pdf", pages=(1,), n_tokens=len(text.split()))


CLEAN = [
    "Incident response teams should document every event. They review the logs each week and report to managers.",
    "Organizations should map their risks before deployment. The review covers data, models and their uses.",
    "Privacy controls limit the personal information a system collects. Users can ask for their data to be deleted.",
    "Testing should measure the accuracy of the system. The results are published for the public to read.",
]
GARBLED_TEXT = (
    "ebisting policies and safeguards that govern automated systems including for ebample /becutive "
    "Order Promoting the ?se of Trustworthy Artificial Intelligence in the 0ederal 1overnment."
)


def test_the_widget_skips_garbled_chunks_and_questions_without_a_question_mark() -> None:
    chunks = [_chunk(0, GARBLED_TEXT), *(_chunk(i + 1, t) for i, t in enumerate(CLEAN))]
    held_out = [
        Pair(query="What policies govern automated systems?", chunk_id="c0", generator="offline"),
        Pair(query="Incident response teams should document every event", chunk_id="c1", generator="offline"),
        Pair(query="How often are the logs reviewed?", chunk_id="c1", generator="offline"),
    ]
    widget = card_widget(chunks, held_out)
    assert widget is not None
    assert widget["source_sentence"] == "How often are the logs reviewed?"
    assert widget["sentences"][0] == CLEAN[0]
    assert all(not GARBLED.search(t) and t in " ".join(CLEAN) for t in widget["sentences"])
    assert len(set(widget["sentences"])) == 3


def test_no_widget_when_no_question_qualifies() -> None:
    chunks = [_chunk(0, GARBLED_TEXT), *(_chunk(i + 1, t) for i, t in enumerate(CLEAN))]
    assert card_widget(chunks, [Pair(query="What is this?", chunk_id="c0", generator="offline")]) is None


def test_an_excerpt_is_whole_sentences_around_the_question() -> None:
    text = " ".join(CLEAN)
    assert excerpt(text, focus="Can users ask for their data to be deleted?", max_words=20) == (
        "Users can ask for their data to be deleted. Testing should measure the accuracy of the system."
    )
    # Never a sentence cut in the middle: none at all when no whole sentence fits.
    assert excerpt("word " * 80 + ".", max_words=10) == ""
    assert excerpt("A heading without a stop\nThe end of a chunk cut off in the", max_words=30) == ""


def test_an_old_runs_garbled_widget_is_left_off_the_card(run_dir: Path, tmp_path: Path) -> None:
    """card.json of a run saved before the check: its widget (a cut-off sentence of garbled text) does not go up."""
    import json

    from ragtune.card import render_card

    parts = json.loads((run_dir / "work" / "card.json").read_text(encoding="utf-8"))
    parts["summary"]["widget"] = {
        "source_sentence": "prohibit or limit any lawful activity of a government agency",
        "sentences": [GARBLED_TEXT, CLEAN[0], CLEAN[1]],
    }
    card = _hub_card(render_card(parts["summary"], parts["metrics"], "alice/tuned"), tmp_path)
    assert getattr(card.data, "widget", None) is None
    parts["summary"]["widget"]["source_sentence"] = "Which activities does it limit?"
    card = _hub_card(render_card(parts["summary"], parts["metrics"], "alice/tuned"), tmp_path)
    assert getattr(card.data, "widget", None) is None
    parts["summary"]["widget"]["sentences"][0] = CLEAN[2]
    card = _hub_card(render_card(parts["summary"], parts["metrics"], "alice/tuned"), tmp_path)
    assert card.data.widget == [parts["summary"]["widget"]]
