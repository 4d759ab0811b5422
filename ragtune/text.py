"""Text helpers shared by the question generators, lexical distillation and passage indexing:
word tokens, sentences (rejoining PDF line breaks), and the cleaning a typed question gets."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-Z(\"“])")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each either etc few for from further had has have having he her
    here hers him his how however i if in into is it its itself may me might more most must my no nor not of off on once
    only or other our ours out over own per same shall she should so some such than that the their theirs them then there
    these they this those through thus to too under until up upon us very via was we were what when where which while who
    whom why will with within without would you your e.g i.e. eg ie page section figure table see use used using based
    well one two three new include includes including""".split()
)

# Scripts written without spaces between words: CJK ideographs, kana, Hangul syllables, Thai, Lao, Khmer, Myanmar.
_UNSPACED = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uac00-\ud7af\uf900-\ufaff]"
)

# A letter (any script written with spaces), then letters, digits, hyphens or apostrophes, ending on a letter or
# digit: the generators must not split "Qualität" where an ASCII class would. Scripts without spaces give no
# words (a whole CJK sentence is no term), as the split stage's unspaced_share check expects.
_UNSPACED_RANGES = _UNSPACED.pattern[1:-1]
_WORD = re.compile(
    rf"[^\W\d_{_UNSPACED_RANGES}](?:[^\W_{_UNSPACED_RANGES}]|['’\-])*[^\W_{_UNSPACED_RANGES}]"
    rf"|[^\W\d_{_UNSPACED_RANGES}]"
)


def unspaced_share(texts: list[str]) -> float:
    """The share of the non-space characters of `texts` in scripts written without spaces between words.

    The offline generator finds terms and sentences by their spaces, so it makes no question from such text.

    >>> round(unspaced_share(["零信任架构检查每一个请求。", "Zero trust"]), 2), unspaced_share(["Zero trust"])
    (0.55, 0.0)
    """
    total = sum(len(t) - sum(c.isspace() for c in t) for t in texts)
    return sum(len(_UNSPACED.findall(t)) for t in texts) / total if total else 0.0


def words(text: str) -> list[str]:
    """Lowercased word tokens.

    >>> words("Zero-trust networks, e.g. ZTA!")
    ['zero-trust', 'networks', 'e', 'g', 'zta']
    >>> words("Qualität der Daten"), words("零信任架构")
    (['qualität', 'der', 'daten'], [])
    """
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


_IDENTIFIER = re.compile(r"\b(?=[\w.-]*\d)(?=[\w.-]*[A-Z])[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)+\b")
_CITATION = re.compile(r"(?<=[a-z.,;:)”\"])\d{1,3}(?:,\d{1,3})*(?=\s|$)")
_LEADING_MARKER = re.compile(r"^(?:[\d•·▪◦*–-]+[.)]?\s+)+")
_URL = re.compile(r"(?:https?://|www\.)\S+|\S+\.(?:com|gov|org|edu|net|pdf|html?)(?:/\S*)?\b|\S*/\S*/\S*")


def clean_query(text: str) -> str:
    """Strip what no one types in a question: document ids, footnote marks, list bullets.

    >>> clean_query("5 These risks GV-1.3-003 occur across outputs.9,10 Later")
    'These risks occur across outputs. Later'
    """
    text = _URL.sub(" ", text)
    text = _IDENTIFIER.sub(" ", text)
    text = _CITATION.sub("", text)
    text = _LEADING_MARKER.sub("", text.strip())
    return re.sub(r"\s+", " ", text).strip()


def _is_heading(line: str, next_line: str) -> bool:
    # A short line with no closing punctuation, followed by a capitalised line,
    # is a heading or a table cell, not part of a sentence.
    line, next_line = line.strip(), next_line.strip()
    return (
        bool(line)
        and len(line.split()) <= 8
        and not line.endswith((".", ",", ";", ":", "?", "!", "-"))
        and (not next_line or not next_line[0].islower())
    )


def sentences(text: str) -> list[str]:
    """Split chunk text into sentences, rejoining the line breaks PDF text is full of.

    >>> sentences("Incident Handling\\nTeams should log\\nevery event. Then act.")
    ['Incident Handling', 'Teams should log every event.', 'Then act.']
    """
    blocks, current = [], []
    lines = text.split("\n")
    for line, next_line in zip(lines, lines[1:] + [""]):
        if _is_heading(line, next_line) or not line.strip():
            blocks += [" ".join(current)] if current else []
            blocks += [line.strip()] if line.strip() else []
            current = []
        else:
            current.append(line.strip())
    blocks += [" ".join(current)] if current else []
    return [s.strip() for b in blocks for s in _SENTENCE_END.split(re.sub(r"\s+", " ", b)) if s.strip()]


def normalise(text: str) -> str:
    """The text as its lowercased words, for comparing questions.

    >>> normalise("What is  Zero-Trust?")
    'what is zero-trust'
    """
    return " ".join(words(text))


_NUMBER_CELL = re.compile(r"^[($]*-?\d[\d,.]*%?\)?[,.;]?$")
MONTHS = {
    m.lower() for m in "January February March April May June July August September October November December".split()
}


def is_table_row(sentence: str) -> bool:
    """Whether a "sentence" is a row of a table that extraction ran together: a label and two or more
    number cells in a row ("lease liabilities 2, 2,"). Prose names one figure at a time; a date
    ("December 31, 2023") is not two cells.

    >>> is_table_row("Operating leases Long-term operating lease liabilities 2, 2,")
    True
    >>> is_table_row("As of December 31, 2023, revenue grew 12 percent.")
    False
    """
    run, previous = 0, ""
    for tok in sentence.split():
        if _NUMBER_CELL.match(tok) and not (run == 0 and previous.lower() in MONTHS):
            run += 1
            if run >= 2:
                return True
        else:
            run = 0
        previous = tok
    return False


# A reference-list entry: "(2023) Title …", "Smith, J. et al.", a URL or a DOI.
REFERENCE = re.compile(r"\(\d{4}[a-z]?\)|^\d{4}[a-z]?\)|\bet al\b|https?://|\bdoi\b|www\.|\bNo\. \d", re.I)

# The end of a clause cut before what it introduces ("such as", "the", "of"): it asks nothing whole.
DANGLING_END = re.compile(
    r"(?:\bsuch as|\be\.?g|\bi\.?e|\bincluding|\bfollowing|\bas follows|\bthe|\ba|"
    r"\ban|\bof|\bto|\band|\bor|\bfor|\bwith|\bin)$",
    re.I,
)


_SINGULAR_S = frozenset("bias news series species lens chaos alias atlas canvas gas".split())


def is_plural(noun: str) -> bool:
    """Whether a phrase's head noun reads as plural ("risks", not "analysis" or "access").

    >>> [is_plural(w) for w in ("risks", "analysis", "access", "status", "data", "llms")]
    [True, False, False, False, False, True]
    """
    return noun.endswith("s") and not noun.endswith(("ss", "us", "is", "ics")) and noun not in _SINGULAR_S


def lower_first(text: str) -> str:
    """Lowercase a capitalised first word, but leave an acronym as it is.

    >>> lower_first("The framework"), lower_first("AI systems")
    ('the framework', 'AI systems')
    """
    return text[0].lower() + text[1:] if text[:2].istitle() else text
