"""Chunks -> themed chunks, by keyword.

A lexicon maps theme -> keywords. A chunk gets every theme with at least one
keyword match (whole words, case-insensitive). Unthemed chunks are kept and
counted, never dropped.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ThemesError
from .records import Chunk

# A general lexicon for the policy, risk and technical documents RAG apps are
# often built on. Users with another domain pass --themes FILE.
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
