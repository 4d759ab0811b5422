"""Text a font without a proper character map garbled: words that are not words of the language.

Some PDF fonts map a few glyphs to the wrong characters, always the same way, so a document reads as a light
substitution cipher: "existing" -> "ebisting", "Federal Government" -> "0ederal 1overnment", "require" ->
"re[uire". The words around them are fine, so a share of unknown words alone does not separate such lines from
clean text full of names and jargon. What does: the same substitution (x -> b) explains several different
unknown words of one document, while a typo or a rare term explains one.

English only: the lexicon is the bundled all-MiniLM-L6-v2 WordPiece vocabulary (about 22,000 whole words), with
common suffixes and prefixes stripped. Text that does not read as English is never judged.

>>> doc = ["the 0ederal rules for ebisting 0unds", "a 0ramework, for ebample", "this ebpert 0orm",
...        "an ebpensive plan", "the existing rule"]
>>> sorted(substitutions(doc))
[('f', '0'), ('x', 'b')]
>>> [line for line in doc if garbled_words(line, substitutions(doc))][-1]
'an ebpensive plan'
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable

from .errors import RagtuneError
from .models import bundled_model_path

# A substitution is the font's when it explains this many different unknown words of one document.
MIN_WORDS_PER_SUBSTITUTION = 3
# A text is "mostly not words" from this share of its judged words on (lines and pages).
MOSTLY = 0.5

_SUFFIXES = (
    "s",
    "es",
    "ed",
    "d",
    "ing",
    "ly",
    "er",
    "ers",
    "ment",
    "ments",
    "ness",
    "ity",
    "ities",
    "ation",
    "ations",
    "al",
    "ally",
    "ize",
    "izes",
    "ized",
    "ise",
    "ised",
    "ization",
    "able",
    "ible",
    "ic",
    "ical",
    "ist",
    "ists",
    "ive",
    "ism",
    "ful",
    "less",
    "ous",
    "ings",
    "ness",
)
_PREFIXES = (
    "un",
    "re",
    "non",
    "pre",
    "co",
    "de",
    "dis",
    "in",
    "im",
    "over",
    "under",
    "sub",
    "inter",
    "multi",
    "cyber",
    "self",
    "anti",
    "mis",
    "post",
    "cross",
    "micro",
    "meta",
)
_EDGE = "()[]{}\"'“”‘’,.;:!?*"
# A lower-case word, or one with a capital first: only these are judged (acronyms, numbers, codes are not).
_PLAIN = re.compile(r"[a-z]{4,}|[A-Z][a-z]{3,}")
# One character that is not a letter inside or at the start of a word: "0ederal", "re[uire", "/becutive", "?se".
_ONE_ODD = re.compile(r"([0-9\[\]/?.#!@\-])([a-z]{2,})|([a-z]+)([0-9\[\]\\^_`@])([a-z]+)")
_FUNCTION_WORDS = frozenset("the of and to a in is that for it as with be by on are this or not from at an".split())


@functools.lru_cache(maxsize=1)
def lexicon() -> frozenset[str]:
    """Whole lower-case words of the bundled model's vocabulary (empty when that package is missing)."""
    try:
        vocab = bundled_model_path() / "vocab.txt"
        return frozenset(w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha() and w.islower())
    except (OSError, RagtuneError):  # no bundled model: nothing is judged (see is_english)
        return frozenset()


def _stem_known(word: str, words: frozenset[str]) -> bool:
    if word in words:
        return True
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if (
                base in words
                or base + "e" in words
                or base + "y" in words  # "equit|able": equity
                or (base[-1] == base[-2] and base[:-1] in words)
                or (base.endswith("i") and base[:-1] + "y" in words)
            ):
                return True
    return False


@functools.lru_cache(maxsize=200_000)
def is_known(word: str) -> bool:
    """Whether a lower-case word is an English word, inflected or prefixed.

    >>> is_known("policies"), is_known("reassessed"), is_known("ebisting")
    (True, True, False)
    """
    words = lexicon()
    if _stem_known(word, words):
        return True
    return any(word.startswith(p) and len(word) - len(p) >= 4 and _stem_known(word[len(p) :], words) for p in _PREFIXES)


def _tokens(text: str) -> list[str]:
    return [t.strip(_EDGE) for t in text.split()]


def is_english(text: str) -> bool:
    """Judging words needs the language's lexicon: only text whose common words are English's is judged."""
    tokens = [t.lower() for t in _tokens(text) if t]
    return bool(lexicon()) and len(tokens) >= 20 and sum(t in _FUNCTION_WORDS for t in tokens) / len(tokens) >= 0.1


def _candidates(token: str) -> Iterable[tuple[str, str, str]]:
    """(original character, shown character, shown word) for each known word one substitution away."""
    odd = _ONE_ODD.fullmatch(token)
    if odd:  # the odd character stands for a letter ("0ederal": F)
        head, char, tail = ("", odd.group(1), odd.group(2)) if odd.group(1) else odd.group(3, 4, 5)
        for c in "abcdefghijklmnopqrstuvwxyz":
            if is_known(head + c + tail):
                yield c, char, token
        return
    word = token.lower()
    if not _PLAIN.fullmatch(token) or is_known(word):
        return
    for i, shown in enumerate(word):
        for c in "abcdefghijklmnopqrstuvwxyz":
            if c != shown and is_known(word[:i] + c + word[i + 1 :]):
                yield c, shown, word


def _explained(texts: Iterable[str], odd_only: bool) -> dict[tuple[str, str], set[str]]:
    explained: dict[tuple[str, str], set[str]] = defaultdict(set)
    for token in {t for text in texts for t in _tokens(text) if len(t) >= 3}:
        if odd_only and not _ONE_ODD.fullmatch(token):
            continue
        for original, shown, word in _candidates(token):
            explained[(original, shown)].add(word)
    return explained


def substitutions(texts: Iterable[str]) -> set[tuple[str, str]]:
    """The (original, shown) character pairs of a document's broken font map.

    A digit or sign standing for a letter ("0ederal") is the font's when it explains at least
    MIN_WORDS_PER_SUBSTITUTION different words: a typo explains one. A letter standing for a letter ("ebisting")
    is too common by chance (names, jargon) to judge on its own, so it counts only where it explains as many
    different words of five letters or more on the lines that the signs already showed to be in the broken font.
    """
    texts = list(texts)
    strong = {
        pair for pair, found in _explained(texts, odd_only=True).items() if len(found) >= MIN_WORDS_PER_SUBSTITUTION
    }
    if not strong:
        return set()
    font_lines = [t for text in texts for t in text.split("\n") if garbled_words(t, strong)]
    weak = {
        pair
        for pair, found in _explained(font_lines, odd_only=False).items()
        if sum(len(w) >= 5 for w in found) >= MIN_WORDS_PER_SUBSTITUTION
    }
    return strong | weak


def garbled_words(text: str, pairs: set[tuple[str, str]]) -> list[str]:
    """The words of `text` that one of the document's substitutions `pairs` explains."""
    return [t for t in _tokens(text) if len(t) >= 3 and any((o, s) in pairs for o, s, _ in _candidates(t))]


def unknown_share(text: str) -> tuple[float, int]:
    """(share of judged words that are not English words, how many were judged).

    >>> unknown_share("the policies of the agency")
    (0.0, 2)
    """
    votes = []
    for t in _tokens(text):
        if _ONE_ODD.fullmatch(t):
            votes.append(False)
        elif _PLAIN.fullmatch(t):
            known = is_known(t.lower())
            if known or t.islower():  # an unknown capitalised word is likely a name: no vote
                votes.append(known)
    return (sum(not v for v in votes) / len(votes) if votes else 0.0), len(votes)


def mostly_not_words(text: str, min_judged: int = 6) -> bool:
    """Whether most of a line's or page's judged words are not words of the language."""
    share, judged = unknown_share(text)
    return judged >= min_judged and share >= MOSTLY


def reads_clean(text: str, max_unknown: float = 0.1, allow_unjudged: bool = False) -> bool:
    """The quality bar for text shown to people (the Hub card's widget): few unknown words, and none that one
    changed character would make a word ("ebisting", "0ederal"), as a broken font map does.

    >>> reads_clean("Organizations should review existing policies for example every year.")
    True
    >>> reads_clean("ebisting policies for ebample /becutive Order of the 0ederal 1overnment")
    False
    >>> reads_clean("The rules cover ebisting systems in every agency of the state.")
    False
    """
    share, judged = unknown_share(text)
    if (judged == 0 and not allow_unjudged) or share > max_unknown:  # no word to judge: not known to read clean
        return False
    return not any(
        _ONE_ODD.fullmatch(t) or (len(t) >= 5 and t.islower() and next(_candidates(t), None)) for t in _tokens(text)
    )
