"""Question generation on real NIST chunks, the question filter and the held-out split."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from ragtune.generators import OfflineGenerator, TemplateGenerator, make_generator
from ragtune.generators.filters import filter_pairs
from ragtune.records import Chunk, Page, Pair
from ragtune.stages.split import split_by_chunk
from ragtune.text import sentences, words
from ragtune.themes import DEFAULT_LEXICON, tag_chunks

# Glue words, and the words of the generator's own question frames: sharing these with a chunk proves nothing.
GLUE = set(
    """the and for are with that this what does how why should can may could will must from into its their is of
    to in on a an or be as by at not other than also such these those which""".split()
)
FRAME_WORDS = {
    w
    for frame in OfflineGenerator.KEYPHRASE_FRAMES
    for verb in (("is", "does"), ("are", "do"))
    for w in words(frame.format(p="", q="", is_=verb[0], does=verb[1]))
} | {"a", "an", "the"}  # articles
GENERIC = GLUE | FRAME_WORDS


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if len(w) >= 3 and w not in GENERIC}


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def nist_chunks(nist_pages: list[Page], tiny_model_dir: Path) -> list[Chunk]:
    """Real chunks of the NIST PDF, themed with the default lexicon, as the pipeline makes them."""
    from transformers import AutoTokenizer

    from ragtune.chunk import chunk_pages

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    chunks = chunk_pages(nist_pages, tok, 128, 16, 126, 24).chunks
    assert len(chunks) > 200
    return tag_chunks(chunks, DEFAULT_LEXICON).chunks


@pytest.fixture(scope="module")
def offline_pairs(nist_chunks: list[Chunk]) -> list[Pair]:
    return OfflineGenerator(questions_per_chunk=4).generate(nist_chunks, random.Random(13))


# --- the template baseline ------------------------------------------------------------


def test_template_questions_come_from_themes_only() -> None:
    chunks = [
        Chunk("c1", "a", (1,), "Attackers steal personal data.", 5, ("privacy",)),
        Chunk("c2", "a", (2,), "Encrypt personal data at rest.", 6, ("privacy", "security")),
        Chunk("c3", "a", (3,), "Lunch is at noon.", 4),
    ]
    pairs = TemplateGenerator().generate(chunks, random.Random(0))
    assert [(p.query, p.chunk_id) for p in pairs] == [
        ("What does this text say about privacy?", "c1"),
        ("What does this text say about privacy?", "c2"),
        ("What does this text say about security?", "c2"),
        ("What does this text say about this topic?", "c3"),
    ]
    assert {(p.generator, p.kind) for p in pairs} == {("template", "template")}


def test_template_repeats_question_text_across_real_chunks(nist_chunks: list[Chunk]) -> None:
    pairs = TemplateGenerator().generate(nist_chunks, random.Random(0))
    texts = Counter(p.query for p in pairs)
    # At most one question per theme (plus the fallback) for hundreds of chunks ...
    assert len(texts) <= len(DEFAULT_LEXICON) + 1
    assert len(pairs) >= len(nist_chunks)
    # ... so the commonest question points at many different chunks: it cannot say which one is meant.
    assert texts.most_common(1)[0][1] > len(nist_chunks) / 4
    # The duplicate filter throws almost all of them away.
    kept = filter_pairs(pairs, {c.id: c for c in nist_chunks}).pairs
    assert len(kept) == len(texts)


# --- the offline generator ------------------------------------------------------------


def prose(chunks: list[Chunk]) -> list[Chunk]:
    """Chunks of running text: three or more sentences of 8+ words that are not reference-list entries.

    The rest (the table of contents, the reference list) is left with fewer questions, on purpose.
    """
    from ragtune.text import REFERENCE, sentences

    return [c for c in chunks if sum(len(s.split()) >= 8 and not REFERENCE.search(s) for s in sentences(c.text)) >= 3]


def test_offline_questions_are_mostly_unique(offline_pairs: list[Pair], nist_chunks: list[Chunk]) -> None:
    # Four questions for each chunk of running text; fewer for the contents and reference pages, and
    # for the odd paragraph that repeats no term (the disclaimer).
    per_chunk = Counter(p.chunk_id for p in offline_pairs)
    counts = Counter(per_chunk[c.id] for c in prose(nist_chunks))
    assert min(counts) >= 3 and counts[4] >= 0.97 * counts.total(), counts
    assert len(offline_pairs) >= 3.3 * len(nist_chunks)
    unique = len({p.query.lower() for p in offline_pairs})
    assert unique >= 0.95 * len(offline_pairs)
    assert {p.generator for p in offline_pairs} == {"offline"}
    assert {p.chunk_id for p in offline_pairs} <= {c.id for c in nist_chunks}


def test_each_question_shares_distinctive_words_with_its_chunk(
    offline_pairs: list[Pair], nist_chunks: list[Chunk]
) -> None:
    chunk_words = {c.id: content_words(c.text) for c in nist_chunks}
    df = Counter(w for ws in chunk_words.values() for w in ws)
    n = len(nist_chunks)
    rare_share = 0
    for p in offline_pairs:
        shared = content_words(p.query) & chunk_words[p.chunk_id]
        assert shared, p
        rare_share += any(df[w] <= 0.1 * n for w in shared)
    # Almost every question carries a word found in at most 10% of the chunks.
    assert rare_share >= 0.9 * len(offline_pairs)


def test_questions_find_their_chunk_by_word_overlap(offline_pairs: list[Pair], nist_chunks: list[Chunk]) -> None:
    """Chunk-specific means a plain IDF word-overlap search puts the chunk near the top; the template can't."""
    chunk_words = {c.id: content_words(c.text) for c in nist_chunks}
    df = Counter(w for ws in chunk_words.values() for w in ws)
    n = len(nist_chunks)

    def top10_share(pairs: list[Pair]) -> float:
        hits = 0
        for p in pairs:
            q = content_words(p.query)
            scores = {cid: sum(math.log(n / df[w]) for w in q & ws) for cid, ws in chunk_words.items()}
            hits += sum(s > scores[p.chunk_id] for s in scores.values()) < 10
        return hits / len(pairs)

    assert top10_share(offline_pairs) >= 0.9
    template = TemplateGenerator().generate(nist_chunks, random.Random(0))
    assert top10_share(template) < 0.5


def test_offline_mixes_question_kinds(offline_pairs: list[Pair], nist_chunks: list[Chunk]) -> None:
    kinds = Counter(p.kind for p in offline_pairs)
    assert set(kinds) == {"sentence", "keyphrase", "cloze"}
    assert all(n >= 0.1 * len(offline_pairs) for n in kinds.values()), kinds
    by_chunk: dict[str, set[str]] = {}
    for p in offline_pairs:
        by_chunk.setdefault(p.chunk_id, set()).add(p.kind)
    # Most chunks get more than one kind of question; the reference list and the table of
    # contents only get term questions.
    assert sum(len(k) >= 2 for k in by_chunk.values()) >= 0.85 * len(by_chunk)


def test_kinds_have_their_shape(offline_pairs: list[Pair], nist_chunks: list[Chunk]) -> None:
    # Footnote marks glued to words ("disparities8") may be cleaned off a question.
    chunk_words = {c.id: set(words(c.text)) | {w.rstrip("0123456789") for w in words(c.text)} for c in nist_chunks}
    for p in offline_pairs:
        if p.kind == "cloze":
            # Inverse cloze: a (cleaned, clipped) sentence of the chunk itself is the query.
            assert set(words(p.query)) <= chunk_words[p.chunk_id], p
            assert 6 <= len(p.query.split()) <= 32, p
        elif p.kind == "sentence":
            assert p.query.endswith("?") and p.query.split()[0] in {"What", "How"}, p
        else:
            # Every word outside the question frame is a word of the chunk.
            assert set(words(p.query)) - FRAME_WORDS <= chunk_words[p.chunk_id], p


TWO_TERMS = re.compile(r"^(?:How (?:does|do) (.+) relate to|What role (?:does|do) (.+) play in) (.+)\?$")


def test_keyphrase_questions_name_whole_terms(offline_pairs: list[Pair], nist_chunks: list[Chunk]) -> None:
    kp = [p for p in offline_pairs if p.kind == "keyphrase"]
    assert len(kp) >= 0.2 * len(offline_pairs)
    # The profile writes these only inside longer terms ("AI Actor Tasks", "National Institute of
    # Standards and Technology", "personally identifiable information"): no question asks about the part.
    fragments = re.compile(r"(?<!ai )\bactor tasks?\b|\bnational institute\b|(?<!personally )\bidentifiable info", re.I)
    assert not [p.query for p in kp if fragments.search(p.query)]
    # A question about one lone word asks about a word its chunk repeats, not one it says in passing.
    chunk_words = {c.id: Counter(words(c.text)) for c in nist_chunks}
    one_term = re.compile(
        r"^(?:What (?:is|are) (?:the (?:implications|significance) of )?|What risks are associated "
        r"with |What measures can be taken to address )(?:(?:a|an|the) )?([\w-]+)\?$"
    )
    lone = [(p, m.group(1).lower()) for p in kp if (m := one_term.match(p.query))]
    assert lone and all(chunk_words[p.chunk_id][w] >= 2 for p, w in lone), [p.query for p, w in lone][:5]
    # A singular term the text writes after an article keeps one ("What is a GAI system?").
    assert any(re.match(r"What is (?:a|an|the) ", p.query) for p in kp)
    # "How does X relate to Y?" and "What role does X play in Y?" pair two terms of one sentence of the chunk.
    text = {c.id: [" " + " ".join(words(s)) + " " for s in sentences(c.text)] for c in nist_chunks}
    paired = 0
    for p in kp:
        m = TWO_TERMS.match(p.query)
        if m:
            paired += 1
            x, y = (
                " " + " ".join(w for w in words(t) if w not in {"a", "an", "the"}) + " "
                for t in (m.group(1) or m.group(2), m.group(3))
            )
            assert any(x in s and y in s for s in text[p.chunk_id]), p
    assert paired >= 0.1 * len(kp)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_respects_questions_per_chunk(nist_chunks: list[Chunk], n: int) -> None:
    pairs = OfflineGenerator(questions_per_chunk=n).generate(nist_chunks, random.Random(13))
    per_chunk = Counter(p.chunk_id for p in pairs)
    assert max(per_chunk.values()) == n
    # Every chunk of running text gets the full number, and most chunks are running text.
    text_chunks = prose(nist_chunks)
    assert len(text_chunks) >= 0.5 * len(nist_chunks)
    assert sum(per_chunk[c.id] == n for c in text_chunks) >= 0.98 * len(text_chunks)
    if n >= 2:
        # Even two questions per chunk mix at least two kinds.
        assert len({p.kind for p in pairs}) >= 2


def test_offline_is_deterministic_for_a_seed(nist_chunks: list[Chunk], offline_pairs: list[Pair]) -> None:
    again = OfflineGenerator(questions_per_chunk=4).generate(list(nist_chunks), random.Random(13))
    assert again == offline_pairs
    other = OfflineGenerator(questions_per_chunk=4).generate(nist_chunks, random.Random(14))
    assert other != offline_pairs
    # The seed only varies the wording, not which chunks get questions (nor, within a few, how many).
    assert {p.chunk_id for p in other} == {p.chunk_id for p in offline_pairs}
    assert abs(len(other) - len(offline_pairs)) <= 0.01 * len(offline_pairs)


def test_sentence_questions_on_a_hand_made_chunk() -> None:
    text = (
        "Establish procedures for incident disclosure to affected communities. "
        "Confabulation is the production of confidently stated but false content. "
        "Organizations may retain logs of model outputs for later review."
    )
    chunk = Chunk("c", "a.txt", (1,), text, 40)
    pairs = OfflineGenerator(questions_per_chunk=8).generate([chunk], random.Random(0))
    sentence_qs = {p.query for p in pairs if p.kind == "sentence"}
    assert sentence_qs == {
        "How should organizations establish procedures for incident disclosure to affected communities?",
        "What is confabulation?",
        "How may organizations retain logs of model outputs for later review?",
    }
    # The chunk says each of its terms once: none is a term question's subject.
    assert {p.kind for p in pairs} == {"sentence", "cloze"}


def test_passive_sentence_does_not_become_a_definition_question() -> None:
    # From page 5 of NIST AI 600-1; the question must be about the sentence, not "What are organizations?".
    text = (
        "Organizations are encouraged to apply the activities suggested in the AI RMF and its Playbook "
        "when managing the risk of GAI systems."
    )
    pairs = OfflineGenerator(questions_per_chunk=8).generate([Chunk("c", "a.txt", (5,), text, 30)], random.Random(0))
    for p in pairs:
        if p.kind == "sentence":
            assert len(content_words(p.query) - {"organizations"}) >= 2, p.query


def test_make_generator() -> None:
    assert make_generator("template", 3).name == "template"
    gen = make_generator("offline", 3)
    assert gen.name == "offline" and gen.questions_per_chunk == 3  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown generator 'llm'"):
        make_generator("llm", 3)
    with pytest.raises(ValueError, match="the openai generator needs a model"):
        make_generator("openai", 3)
    # The same server as Config's default, when none is given.
    from ragtune.config import Config

    openai = make_generator("openai", 3, model="m", cache_dir=None)
    assert openai.base_url == Config(docs=Path("d")).llm_base_url  # type: ignore[attr-defined]


# --- filter_pairs ---------------------------------------------------------------------

CHUNKS = {
    "c1": Chunk("c1", "a", (1,), "Zero trust assumes no implicit trust.", 7),
    "c2": Chunk("c2", "a", (2,), "Encrypt data at rest and in transit.", 8),
}


def q(query: str, chunk_id: str = "c1") -> Pair:
    return Pair(query, chunk_id, "test", "k")


@pytest.mark.parametrize(
    ("queries", "kept", "dropped"),
    [
        # Fewer than 3 words after normalising ("What's" is one word, punctuation is not).
        (["Hi there", "What's AI?!", "  ...  ", "What is trust?"], ["What is trust?"], {"too short": 3}),
        # Duplicates ignore case, spacing and punctuation (not hyphens); the first one is kept.
        (
            ["What is zero trust?", "what is ZERO   trust", "What, is zero trust!!", "What is zero-trust?"],
            ["What is zero trust?", "What is zero-trust?"],
            {"duplicate question": 2},
        ),
        # A question copying the whole chunk teaches nothing.
        (
            ["zero trust assumes no IMPLICIT trust", "Zero trust assumes implicit trust."],
            ["Zero trust assumes implicit trust."],
            {"copies the whole chunk": 1},
        ),
        ([], [], {}),
    ],
    ids=["too-short", "duplicate", "copies-chunk", "empty"],
)
def test_filter_rules(queries: list[str], kept: list[str], dropped: dict[str, int]) -> None:
    result = filter_pairs([q(x) for x in queries], CHUNKS)
    assert [p.query for p in result.pairs] == kept
    assert result.dropped.counts == dropped
    assert len(result.pairs) + result.dropped.total() == len(queries)


def test_filter_word_limits_are_inclusive() -> None:
    at_max = " ".join(["word"] * 63 + ["end"])  # 64 words
    over = " ".join(["more"] * 65)
    result = filter_pairs([q(at_max), q(over), q("one two three")], CHUNKS)
    assert [p.query for p in result.pairs] == [at_max, "one two three"]
    assert result.dropped.counts == {"too long": 1}
    # Long examples are shortened in the report.
    assert result.dropped.examples["too long"] == [over[:60]]
    custom = filter_pairs([q("one two three"), q("one two three four five six")], CHUNKS, min_words=4, max_words=5)
    assert custom.pairs == [] and custom.dropped.counts == {"too short": 1, "too long": 1}


def test_duplicates_across_chunks_are_dropped() -> None:
    # The same question for two chunks cannot have one right answer.
    result = filter_pairs([q("What is encrypted here?", "c1"), q("What is encrypted here?", "c2")], CHUNKS)
    assert [(p.query, p.chunk_id) for p in result.pairs] == [("What is encrypted here?", "c1")]
    assert result.dropped.counts == {"duplicate question": 1}


def test_whole_chunk_check_uses_the_pairs_own_chunk() -> None:
    other_text = "Encrypt data at rest and in transit."
    result = filter_pairs(
        [q(other_text, "c1"), q(other_text, "c2"), q("Zero trust assumes no implicit trust.", "cX")], CHUNKS
    )
    # c1 is not the chunk it copies; cX is unknown: both are kept.
    assert [(p.chunk_id) for p in result.pairs] == ["c1", "cX"]
    assert result.dropped.counts == {"duplicate question": 1}


def test_filter_keeps_pairs_unchanged_and_in_order(offline_pairs: list[Pair], nist_chunks: list[Chunk]) -> None:
    result = filter_pairs(offline_pairs, {c.id: c for c in nist_chunks})
    it = iter(offline_pairs)
    assert all(any(p is x for x in it) for p in result.pairs)  # a subsequence of the input
    assert len(result.pairs) + result.dropped.total() == len(offline_pairs)
    assert len(result.pairs) >= 0.95 * len(offline_pairs)


# --- split_by_chunk -------------------------------------------------------------------


def make_pairs(n_chunks: int) -> list[Pair]:
    rng = random.Random(5)
    return [
        Pair(f"question {i} about chunk {c}", f"c{c:03d}", "test")
        for c in range(n_chunks)
        for i in range(rng.randint(1, 4))
    ]


@pytest.mark.parametrize(("fraction", "n_held"), [(0.05, 2), (0.2, 8), (0.33, 13), (0.5, 20)])
def test_split_holds_out_whole_chunks(fraction: float, n_held: int) -> None:
    pairs = make_pairs(40)
    train, held = split_by_chunk(pairs, fraction, seed=13)
    train_chunks, held_chunks = {p.chunk_id for p in train}, {p.chunk_id for p in held}
    assert not train_chunks & held_chunks
    assert len(held_chunks) == n_held
    assert len(train_chunks) == 40 - n_held
    # Every pair lands on exactly one side, in its original order.
    assert train == [p for p in pairs if p.chunk_id in train_chunks]
    assert held == [p for p in pairs if p.chunk_id in held_chunks]


def test_split_is_seeded() -> None:
    pairs = make_pairs(40)
    first = split_by_chunk(pairs, 0.2, seed=13)
    assert split_by_chunk(pairs, 0.2, seed=13) == first
    # Input order does not matter, only the seed does.
    shuffled = pairs[:]
    random.Random(0).shuffle(shuffled)
    assert {p.chunk_id for p in split_by_chunk(shuffled, 0.2, seed=13)[1]} == {p.chunk_id for p in first[1]}
    held_sets = {frozenset(p.chunk_id for p in split_by_chunk(pairs, 0.2, seed=s)[1]) for s in range(5)}
    assert len(held_sets) == 5


def test_split_of_tiny_inputs() -> None:
    two = make_pairs(2)
    train, held = split_by_chunk(two, 0.05, seed=1)
    # At least one chunk is held out whenever there are two or more.
    assert len({p.chunk_id for p in held}) == 1 and len({p.chunk_id for p in train}) == 1
    one = make_pairs(1)
    assert split_by_chunk(one, 0.5, seed=1) == (one, [])
    assert split_by_chunk([], 0.2, seed=1) == ([], [])


def test_template_baseline_keeps_one_question_text_for_many_chunks() -> None:
    chunks = {c: Chunk(c, "a.pdf", (1,), f"text {c}", 3) for c in ("a", "b")}
    same = [Pair("What does this text say about privacy?", c, "template") for c in ("a", "b", "a")]
    kept = filter_pairs(same, chunks, across_chunks=False)
    assert [p.chunk_id for p in kept.pairs] == ["a", "b"]
    assert kept.dropped.counts == {"duplicate question": 1}
    assert [p.chunk_id for p in filter_pairs(same, chunks).pairs] == ["a"]


# --- questions about the figures of a table ------------------------------------------------


def test_a_statement_of_figures_is_asked_for_its_figures_as_an_analyst_would(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A real PDF (a filing's prose, then its income statement, each cell placed on its own), read by
    pypdf and chunked as a run does: each row with figures gets a question for one of the header's
    years, in its own chunk, also where the statement goes on past its header's chunk; prose that
    names years and figures gets none."""
    from transformers import AutoTokenizer

    from ragtune.chunk import chunk_pages
    from ragtune.extract import extract_folder
    from tests.support.statements import PROSE, ROWS, YEARS, filing_pdf

    (tmp_path / "filing.pdf").write_bytes(filing_pdf())
    pages = extract_folder(tmp_path).pages
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    chunks = chunk_pages(pages, tok, 96, 8, 94, 8).chunks
    statement = [c for c in chunks if 2 in c.pages]
    assert len(statement) >= 2, "the statement must run over more than one chunk"
    pairs = OfflineGenerator(questions_per_chunk=12).generate(chunks, random.Random(13))
    figures = [p for p in pairs if p.kind == "figure"]
    text = {c.id: c.text for c in chunks}
    pattern = re.compile(r"^What (?:was|were|is|are) the (?:FY(\d{4}) )?(.+?)(?: (?:in|for fiscal year) (\d{4}))?\?$")
    asked = set()
    for p in figures:
        m = pattern.match(p.query)
        assert m, p.query
        year, label = m.group(1) or m.group(3), m.group(2)
        assert year in YEARS, p.query
        # The row it asks for is in the question's own chunk, on a line of figures.
        row = next(r for r, figs in ROWS if figs and r.lower() == label.lower())
        assert any(line.startswith(row) and "$" in line for line in text[p.chunk_id].split("\n")), p
        asked.add(row)
    rows_seen = {r for r, figs in ROWS if figs and any(r in c.text for c in statement)}
    assert asked == rows_seen and len(asked) == sum(1 for _, figs in ROWS if figs), (asked, rows_seen)
    # Each year, and each of the frames, is asked somewhere in the table.
    assert {y for y in YEARS if any(y in p.query for p in figures)} == set(YEARS)
    assert {"in", "fiscal", "FY"} <= {w for p in figures for w in re.findall(r"\bin\b|fiscal|FY", p.query)}
    # The prose page names years and figures, and is asked for none.
    assert all(2 in next(c.pages for c in chunks if c.id == p.chunk_id) for p in figures)
    assert any(all(line in c.text for line in PROSE[3:]) and c.pages == (1,) for c in chunks)
