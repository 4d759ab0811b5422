"""Chunks -> themed chunks, by keyword.

A lexicon maps theme -> keywords. A chunk gets every theme with at least one
keyword match (whole words, case-insensitive). Unthemed chunks are kept and
counted, never dropped. Without --themes FILE the lexicon is derived from the
corpus itself (`derive_lexicon`: its most distinctive words and word pairs by TF-IDF).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .errors import ThemesError
from .records import Chunk
from .text import STOPWORDS

# An example lexicon, for AI-governance documents (docs/themes-ai-governance.yaml holds it as a --themes FILE).
# It fits only such documents: without --themes a run derives its themes from its own corpus.
DEFAULT_LEXICON: dict[str, list[str]] = {
    "privacy": [
        "privacy",
        "personal data",
        "personal information",
        "PII",
        "consent",
        "surveillance",
        "anonymiz*",
        "de-identif*",
    ],
    "security": [
        "security",
        "cyber*",
        "attack*",
        "vulnerabilit*",
        "threat*",
        "malware",
        "adversar*",
        "encrypt*",
        "authenticat*",
        "access control",
    ],
    "fairness": ["bias*", "discriminat*", "fairness", "equit*", "disparit*", "protected class*", "civil rights"],
    "safety": ["safety", "safe", "harm*", "hazard*", "dangerous", "misuse"],
    "transparency": ["transparen*", "explainab*", "explanation*", "disclos*", "notice", "interpretab*", "provenance"],
    "governance": ["governance", "policy", "policies", "oversight", "accountab*", "compliance", "regulat*", "audit*"],
    "risk management": ["risk*", "mitigat*", "impact assessment*", "risk tolerance"],
    "data": ["data", "dataset*", "training data", "data quality", "data collection"],
    "evaluation": ["evaluat*", "test*", "measur*", "benchmark*", "validat*", "monitor*", "red-team*", "red team*"],
    "incident response": ["incident*", "breach*", "response", "recovery", "forensic*", "escalat*"],
    "human oversight": [
        "human oversight",
        "human review",
        "human alternative*",
        "fallback",
        "human-AI",
        "human in the loop",
        "opt out",
    ],
    "generative AI": [
        "generative",
        "GAI",
        "large language model*",
        "LLM*",
        "foundation model*",
        "chatbot*",
        "synthetic content",
        "deepfake*",
    ],
    "information integrity": [
        "misinformation",
        "disinformation",
        "confabulat*",
        "hallucinat*",
        "information integrity",
    ],
    "intellectual property": ["intellectual property", "copyright*", "trademark*", "licens*"],
    "network architecture": ["zero trust", "network*", "enterprise", "endpoint*", "policy engine", "micro-segment*"],
}


@dataclass
class Theming:
    chunks: list[Chunk]
    per_theme: dict[str, int]
    unthemed: int


def _keyword_pattern(keywords: list[str]) -> re.Pattern[str]:
    # "attack*" matches attack, attacks, attacker …; other keywords match whole words.
    alts = []
    for kw in sorted(keywords, key=len, reverse=True):
        stem = kw.rstrip("*")
        body = re.escape(stem).replace(r"\ ", r"[\s-]+")
        alts.append(body + (r"\w*" if kw.endswith("*") else ""))
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)


def load_lexicon(path: Path) -> dict[str, list[str]]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file mapping theme -> list of keywords."""
    try:
        raw_text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ThemesError(f"cannot read themes file {path}: {e.strerror}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(raw_text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(raw_text)
        else:
            raise ThemesError(f"themes file {path} must end in .yaml, .yml or .toml")
    except ThemesError:
        raise
    except Exception as e:  # tomllib's message ends "(at line 2, column 1)"; yaml's marks the spot
        mark = getattr(e, "problem_mark", None)
        detail = f"line {mark.line + 1}, column {mark.column + 1}: {getattr(e, 'problem', '')}" if mark else str(e)
        detail = " ".join(detail.split())[:200]
        raise ThemesError(f"themes file {path} is not valid {suffix[1:].upper()}: {detail}") from None
    if not isinstance(data, dict) or not data:
        raise ThemesError(f"themes file {path} must map each theme to a list of keywords")
    lexicon: dict[str, list[str]] = {}
    for theme, keywords in data.items():
        if isinstance(keywords, str):
            keywords = [keywords]
        if (
            not isinstance(keywords, list)
            or not keywords
            or not all(isinstance(k, str) and k.strip() for k in keywords)
        ):
            raise ThemesError(f"themes file {path}: theme {theme!r} must have a non-empty list of keyword strings")
        lexicon[str(theme)] = [k.strip() for k in keywords]
    return lexicon


def tag_chunks(chunks: list[Chunk], lexicon: dict[str, list[str]]) -> Theming:
    """Attach every matching theme to each chunk.

    >>> t = tag_chunks([Chunk("c", "a", (1,), "Attackers target data.", 4)], {"security": ["attack*"]})
    >>> t.chunks[0].themes, t.unthemed
    (('security',), 0)
    """
    patterns = {theme: _keyword_pattern(kws) for theme, kws in lexicon.items()}
    per_theme = {theme: 0 for theme in lexicon}
    out, unthemed = [], 0
    for c in chunks:
        themes = tuple(t for t, pat in patterns.items() if pat.search(c.text))
        for t in themes:
            per_theme[t] += 1
        unthemed += not themes
        out.append(dataclasses.replace(c, themes=themes))
    return Theming(chunks=out, per_theme=per_theme, unthemed=unthemed)


# Where the themes of a run came from that was tagged with DEFAULT_LEXICON before themes were derived.
EXAMPLE_THEMES = "the AI-governance example lexicon (kept from an older run)"
# Derived themes: this many at most, each a word or word pair in at least MIN_SHARE of the chunks (a theme of two
# chunks says nothing) and at most MAX_SHARE (a word in most chunks is the corpus's subject, not a theme of it).
DERIVED_THEMES = 8
MIN_SHARE = 0.04
MAX_SHARE = 0.4
# Two candidates whose chunks overlap this much (Jaccard) are one theme: the first, better-scored one is kept.
MAX_OVERLAP = 0.5
_TERM = re.compile(r"[a-z][a-z'-]*[a-z]")
_PUNCTUATION = re.compile(r"[^\w\s'-]+")


def _stem(word: str) -> str:
    """A word's plural and singular as one key ("policies" and "policy", "employees" and "employee")."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def _chunk_terms(text: str, stopwords: frozenset[str]) -> dict[str, str]:
    """The terms of one chunk: stem key -> the form seen (words of 3+ letters, and pairs of such words
    next to each other); stop words, numbers and words with digits are left out."""
    terms: dict[str, str] = {}
    # A pair never spans punctuation: "rights, opportunities" is a list, not a term.
    for part in _PUNCTUATION.split(text.lower()):
        words = [w.strip("'-") for w in _TERM.findall(part)]
        words = [w if len(w) >= 3 and w not in stopwords else "" for w in words]
        for i, w in enumerate(words):
            if not w:
                continue
            terms.setdefault(_stem(w), w)
            if i + 1 < len(words) and words[i + 1]:
                terms.setdefault(f"{w} {_stem(words[i + 1])}", f"{w} {words[i + 1]}")
    return terms


def derive_lexicon(texts: list[str], n_themes: int = DERIVED_THEMES) -> dict[str, list[str]]:
    """Themes of a corpus from its own chunks: the terms (words or word pairs) with the highest summed TF-IDF
    that are in a reasonable share of the chunks (MIN_SHARE to MAX_SHARE), one per group of terms that mark
    the same chunks. Each theme is named by its term; its keywords are the forms seen (singular and plural).

    >>> leave = ["Annual leave is booked early.", "Book annual leave with HR.", "Annual leave carries over."]
    >>> pension = ["The pension plan pays monthly.", "Your pension plan grows.", "Pension plans for staff."]
    >>> derive_lexicon(leave + pension + ["Contents.", "Blank page.", "Foreword.", "Index."])
    {'annual leave': ['annual leave'], 'pension plan': ['pension plan', 'pension plans']}
    """
    n = len(texts)
    if n == 0:
        return {}
    df: Counter[str] = Counter()
    tf: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = {}
    chunk_sets: dict[str, set[int]] = {}
    for i, text in enumerate(texts):
        terms = _chunk_terms(text, STOPWORDS)
        counts = Counter(_stem(w) if " " not in w else w for w in terms.values())
        for key, form in terms.items():
            df[key] += 1
            tf[key] += 1 + math.log(max(1, counts[key]))
            forms.setdefault(key, Counter())[form] += 1
            chunk_sets.setdefault(key, set()).add(i)
    low, high = max(2, math.ceil(MIN_SHARE * n)), max(2, int(MAX_SHARE * n))
    # A pair counts a little more than a word: "annual leave" says more than "annual" or "leave".
    scored = sorted(
        (key for key in df if low <= df[key] <= high),
        key=lambda k: (-tf[k] * math.log(n / df[k]) * (1.5 if " " in k else 1.0), k),
    )
    chosen: list[str] = []
    for key in scored:
        if len(chosen) == n_themes:
            break
        mine = chunk_sets[key]
        # "gai systems" after "systems" (or "gai risks") is the same theme again: one word each, at most once.
        if any(set(key.split()) & set(c.split()) for c in chosen):
            continue
        if any(len(mine & chunk_sets[c]) / len(mine | chunk_sets[c]) > MAX_OVERLAP for c in chosen):
            continue
        chosen.append(key)
    return {forms[key].most_common(1)[0][0]: sorted(forms[key]) for key in chosen}
