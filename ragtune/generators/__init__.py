"""Chunks -> synthetic (question, chunk id) pairs.

Generators implement `QuestionGenerator`; `make_generator` builds one from a run's settings.
`offline` (the default) writes questions specific to each chunk from the chunk's own
content, with no LLM and no network; `template` is the original recipe, kept only as a
baseline; `openai` and `local` ask an LLM (generators/llm.py, generators/local.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..config import DEFAULT_LLM_BASE_URL
from ..records import Chunk, Pair, SkipCounter
from .local import LocalGenerator
from .offline import OfflineGenerator
from .openai import OpenAIGenerator
from .template import TemplateGenerator

if TYPE_CHECKING:
    from .llm import LLMStats

__all__ = ["Generation", "OfflineGenerator", "QuestionGenerator", "TemplateGenerator", "make_generator"]


class QuestionGenerator(Protocol):
    """Makes questions for chunks. `name` is recorded on every pair it makes.

    After `generate`, `dropped` counts by reason what it made but could not use (an LLM's
    unusable lines, failed chunks), and `stats` holds an LLM generator's requests, tokens
    and time (None for the generators that need no LLM).
    """

    name: str
    dropped: SkipCounter
    stats: LLMStats | None

    def generate(self, chunks: list[Chunk], rng: random.Random) -> list[Pair]: ...


@dataclass
class Generation:
    pairs: list[Pair]
    dropped: SkipCounter = field(default_factory=SkipCounter)


def make_generator(
    name: str,
    questions_per_chunk: int,
    *,
    base_url: str = DEFAULT_LLM_BASE_URL,
    model: str = "",
    concurrency: int = 4,
    timeout: float = 60.0,
    retries: int = 4,
    seed: int = 13,
    cache_dir: Path | None = None,
    device: str = "",
    vocabulary: frozenset[str] | None = None,
) -> QuestionGenerator:
    """The generator called `name`, from the run's settings (the LLM ones matter only for
    `openai` and `local`; the API key is read from OPENAI_API_KEY here, never from a setting)."""
    if name == "template":
        return TemplateGenerator()
    if name == "offline":
        return OfflineGenerator(questions_per_chunk, vocabulary=vocabulary)
    if name in ("openai", "local") and not model:
        raise ValueError(f"the {name} generator needs a model")
    if name == "openai":
        import os

        return OpenAIGenerator(
            base_url,
            model,
            questions_per_chunk,
            api_key=os.environ.get("OPENAI_API_KEY", ""),
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
            seed=seed,
            cache_dir=cache_dir,
        )
    if name == "local":
        return LocalGenerator(model, questions_per_chunk, seed=seed, cache_dir=cache_dir, device=device)
    raise ValueError(f"unknown generator {name!r}")
