"""The original recipe, kept only as a baseline: its question text repeats across chunks,
which makes retrieval worse."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ..records import Chunk, Pair, SkipCounter

if TYPE_CHECKING:
    from .llm import LLMStats


class TemplateGenerator:
    """The original recipe: "What does this text say about {theme}?" — a baseline only."""

    name = "template"

    def __init__(self) -> None:
        self.dropped = SkipCounter()
        self.stats: LLMStats | None = None

    def generate(self, chunks: list[Chunk], rng: random.Random) -> list[Pair]:
        pairs = []
        for c in chunks:
            for theme in c.themes or ("this topic",):
                pairs.append(Pair(f"What does this text say about {theme}?", c.id, self.name, "template"))
        return pairs
