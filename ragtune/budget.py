"""The plan of a run before it trains: what it will do and how long that takes, and under `--time-budget`
what it chooses so that the whole run ends in time.

The arithmetic is pure (`plan_run`: measured costs and corpus sizes -> a Plan); the measuring, a few
real training steps and encodings with the base model, is in `measure_costs`.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .config import LLM_GENERATORS, MIN_BUDGET_SECONDS, parse_duration  # noqa: F401 (budget's names too)
from .fileio import read_json, write_json
from .generators import make_generator
from .generators.lexical import span_counts
from .generators.offline import MAX_QUERY_WORDS
from .models import encoding_in, pick_device, resolve_precision, word_vocabulary
from .records import Chunk, read_jsonl
from .retrieval import passages_of, retrieval_units
from .training.deadline import Deadline

# The share of the budget kept free: estimates from a few steps are rough, and the budget is a promise.
MARGIN = 0.15
# Fewer questions per chunk than a training row holds only repeats them within the row.
MIN_STEPS = 5
# What passages may cost at most of the time left before a budgeted run gives up their overlap, then them.
PASSAGE_SHARE = 0.35
# Seconds a run spends whatever the corpus: loading the models twice, saving the model, the card and report.
FIXED_SECONDS = 15.0
# Rows of the warm-up batch: a CPU's step time grows about linearly with the rows, so a small batch measured
# and scaled to batch_size costs a few seconds where a full one would cost as much as several real steps.
WARMUP_ROWS = 8
# Timed steps, priced at their median: a shared machine's slow spell of a few seconds lands on one of them. With two,
# the "median" was the slower, and one step at 19.7 s of 8 rows (the others 3 s) priced a NIST step at 79 s where
# training took 13 s, and the plan said even 5 steps would not fit a 111 s budget the run then ended within.
WARMUP_STEPS = 3
# The warm-up prices shapes, not the words of whichever chunks it samples: a step's cost depends on how many tokens
# each column holds. A real batch pads its question columns to the longest of 32 questions (the generators write at
# most MAX_QUERY_WORDS words), and encoding sorts questions by length, so a typical question (about
# TYPICAL_QUESTION_WORDS words) prices that. Words become tokens at the corpus's own rate, measured on
# DENSITY_SAMPLE chunks from across it: 2.10 MiniLM tokens a word on the Debian manuals, 1.63 on NIST AI 600-1,
# which puts the longest question at 69 and 54 tokens (batches' longest, median of 300 batches of 32: 72.5 and 38).
# Timed on the first 32 words of 8 sampled chunks instead, a step was priced at 47-58 s where training took 13-16 s
# whenever one of the 8 began with commands, links or a table of contents (231 tokens).
TYPICAL_QUESTION_WORDS = 12
DENSITY_SAMPLE = 256
# The chunk column is padded to the length a batch of 32 chunks reaches: this share of the sampled chunks is shorter.
CHUNK_LENGTH_QUANTILE = 0.97


@dataclass(frozen=True)
class Costs:
    """What one unit of work costs on this machine, measured (measure_costs)."""

    step_seconds: float  # one training step at the run's batch size
    encode_seconds: float  # one chunk encoded
    query_seconds: float  # one question encoded
    save_seconds: float = 0.0  # the model saved once (a checkpoint, with the optimiser's state, is about 3 saves)
    # One passage encoded (None: priced as a chunk). Passages are a few sentences, a chunk a few hundred tokens:
    # priced as chunks, the four shared PDFs' 5,808 passages were planned at 423 s of evaluation where the
    # whole evaluation took 178 s, and an 11-minute budget gave them up.
    passage_seconds: float | None = None

    @property
    def passage_price(self) -> float:
        return self.encode_seconds if self.passage_seconds is None else self.passage_seconds


@dataclass(frozen=True)
class Sizes:
    """The corpus and the settings the plan starts from (the run's Config)."""

    n_chunks: int
    # Passages per chunk at the configured passage_words and stride, and without overlap (stride 0).
    passages_per_chunk: float
    passages_per_chunk_no_overlap: float
    questions_per_chunk: int
    lexical_per_chunk: int
    queries_per_row: int
    batch_size: int
    epochs: float
    max_steps: int
    eval_fraction: float
    eval_max_chunks: int
    val_fraction: float
    val_max_chunks: int
    passage_words: int
    passage_stride: int
    # Checkpoints written over training (Config.evals).
    evals: int = 4
    # Per chunk, where the plan could count them (`sizes_of`): the questions the generator writes at
    # questions_per_chunk, and the BM25-labelled spans the chunk gives. Empty: priced at the settings, which
    # counted the Debian manuals' unbounded run at 884 steps where it trained 471 (the offline generator writes
    # 7.1 questions a chunk of the 12 asked there, and a chunk gives 3.8 spans of the 8).
    written: tuple[int, ...] = ()
    spans: tuple[int, ...] = ()


# The stages each part of a plan's `seconds` stands for (what runs before the plan is in none).
PART_STAGES = {"generate": ("generate",), "train": ("split", "train"), "evaluate": ("evaluate",), "other": ("save",)}


@dataclass(frozen=True)
class Plan:
    """What the run will do, its estimated seconds by part, and the budget it was planned for (0: none)."""

    steps: int
    max_steps: int  # the cap the run trains with (-1: all epochs)
    batch_size: int
    questions_per_chunk: int
    eval_max_chunks: int
    eval_questions: int
    passage_words: int
    passage_stride: int
    seconds: dict[str, float]
    budget_seconds: float = 0.0
    # What the budget changed, as "setting: from -> to".
    changed: tuple[str, ...] = ()
    # Seconds the run had spent when it planned (extraction, chunking, the warm-up).
    spent_seconds: float = 0.0
    # The steps the run would train without the budget, at the plan's questions per chunk, when the budget cut
    # them (else 0): training that runs faster than the warm-up priced it takes more steps in the time it was
    # given, up to these.
    uncut_steps: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def line(self, done: Collection[str] = ()) -> str:
        """The console line: what the run does and about how long it takes. `done`: the parts of `seconds` an
        earlier invocation of the same plan finished, which this one reuses and does not count."""
        passages = "no passages" if not self.passage_words else f"passages of {self.passage_words}+ words"
        text = (
            f"plan: {self.steps} steps of {self.batch_size}, {self.questions_per_chunk} questions per chunk, "
            f"evaluation on {self.eval_questions} questions, {passages}; "
        )
        left = [part for part in self.seconds if part not in done]
        if not left:
            return text + "every part was done by an earlier run (reused unless its inputs changed)"
        text += f"about {_minutes(sum(self.seconds[p] for p in left))} more"
        if self.budget_seconds:
            text += f" of a {_minutes(self.budget_seconds)} budget"
            text += f" ({'; '.join(self.changed)})" if self.changed else " (no change needed)"
            if self.spent_seconds + self.total_seconds > self.budget_seconds:
                # The least the run does (MIN_STEPS, one row of questions a chunk) does not fit: say so now, with
                # the budget it would fit and the part that takes longest, so the user knows what to change.
                part = max(self.seconds, key=lambda k: self.seconds[k])
                text += (
                    f"; even the smallest run does not fit it on this machine now ({part} alone "
                    f"{_minutes(self.seconds[part])}): allow --time-budget {self.least_budget_minutes()}m"
                )
        if done:
            text += f"; {', '.join(p for p in self.seconds if p in done)} done by an earlier run"
        return text

    def least_budget_minutes(self) -> int:
        """The budget, in whole 5 minutes, that this plan's work fits with the planner's margin."""
        return 5 * math.ceil((self.spent_seconds + self.total_seconds) / (1 - MARGIN) / 300)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["changed"] = list(self.changed)
        out["seconds"] = {k: round(v, 1) for k, v in self.seconds.items()}
        out["total_seconds"] = round(self.total_seconds, 1)
        return out


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _held_chunks(n: int, fraction: float, most: int) -> int:
    return min(most, max(1, round(n * fraction))) if n else 0


def _steps(train_chunks: int, questions: int, s: Sizes) -> int:
    """Training steps of all epochs: one row per queries_per_row questions (and lexical spans) of a chunk, at
    `questions` a chunk or fewer where the generator writes fewer (Sizes.written), with the spans each chunk gives.

    >>> s = Sizes(4, 0.0, 0.0, 12, 8, 4, 2, 1.0, -1, 0.0, 0, 0.0, 0, 0, 0)
    >>> _steps(4, 12, s), _steps(4, 12, dataclasses.replace(s, written=(12, 12, 2, 0), spans=(8, 2, 2, 3)))
    (10, 5)
    """
    if s.written or s.spans:
        n = max(len(s.written), len(s.spans))
        written, spans = s.written or (questions,) * n, s.spans or (s.lexical_per_chunk,) * n
        # Spans come only from chunks with training questions (lexical_pairs' `allowed`).
        total = sum(math.ceil((min(questions, w) + k * bool(w)) / s.queries_per_row) for w, k in zip(written, spans))
        rows = -(-train_chunks * total // n)
    else:
        rows = train_chunks * math.ceil((questions + s.lexical_per_chunk) / s.queries_per_row)
    steps = max(1, math.ceil(math.ceil(rows / s.batch_size) * s.epochs))
    return steps if s.max_steps < 0 else min(steps, s.max_steps)


def _evaluation_seconds(s: Sizes, c: Costs, passages_per_chunk: float, eval_questions: int) -> float:
    """Both models encode every chunk and its passages, and the held-out questions."""
    return 2 * (s.n_chunks * c.encode_seconds + eval_questions * c.query_seconds) + _passage_seconds(
        s, c, passages_per_chunk
    )


def _passage_seconds(s: Sizes, c: Costs, passages_per_chunk: float) -> float:
    """What passages add to the evaluation: both models encode each."""
    return 2 * s.n_chunks * passages_per_chunk * c.passage_price


def plan_run(s: Sizes, c: Costs, budget_seconds: float = 0.0, spent_seconds: float = 0.0) -> Plan:
    """The plan for a corpus of `s` at costs `c`: with a budget (seconds, of which `spent_seconds` are gone),
    first passages' overlap, then passages, then questions per chunk (down to one row's worth), then the
    number of steps give way, until the estimate fits within the budget less MARGIN; without one, as configured.

    >>> s = Sizes(400, 3.0, 1.5, 12, 8, 4, 32, 1.5, -1, 0.2, 100, 0.1, 50, 20, 1)
    >>> plan_run(s, Costs(6.0, 0.05, 0.01)).steps
    66
    >>> p = plan_run(s, Costs(6.0, 0.05, 0.01), budget_seconds=300)
    >>> p.steps < 66 and p.total_seconds <= 300 * (1 - MARGIN)
    True
    """
    eval_chunks = _held_chunks(s.n_chunks, s.eval_fraction, s.eval_max_chunks)
    val_chunks = _held_chunks(s.n_chunks, s.val_fraction, s.val_max_chunks)
    train_chunks = max(1, s.n_chunks - eval_chunks - val_chunks)
    questions, words, stride, per_chunk = s.questions_per_chunk, s.passage_words, s.passage_stride, 0.0
    per_chunk = s.passages_per_chunk if words else 0.0

    def seconds(steps: int) -> dict[str, float]:
        n_questions = s.n_chunks * questions
        return {
            "generate": n_questions * c.query_seconds,
            "train": steps * c.step_seconds + (3 * s.evals + 1) * c.save_seconds,
            "evaluate": _evaluation_seconds(s, c, per_chunk, eval_chunks * questions),
            "other": FIXED_SECONDS,
        }

    steps, uncut = _steps(train_chunks, questions, s), 0
    changed: list[str] = []
    if budget_seconds:
        left = budget_seconds * (1 - MARGIN) - spent_seconds
        # Passages: first without overlap, then none, when they would take more than their share.
        if words and _passage_seconds(s, c, per_chunk) > PASSAGE_SHARE * left and stride:
            changed.append(f"passage_stride {stride} -> 0")
            stride, per_chunk = 0, s.passages_per_chunk_no_overlap
        if words and _passage_seconds(s, c, per_chunk) > PASSAGE_SHARE * left:
            changed.append(f"passage_words {words} -> 0")
            words, per_chunk = 0, 0.0
        wanted = questions
        while questions > s.queries_per_row and sum(seconds(_steps(train_chunks, questions, s)).values()) > left:
            questions -= 1
        if questions != wanted:
            changed.append(f"questions_per_chunk {wanted} -> {questions}")
        steps = _steps(train_chunks, questions, s)
        room = left - sum(seconds(0).values())
        fit = max(MIN_STEPS, int(room // c.step_seconds)) if c.step_seconds > 0 else steps
        if fit < steps:
            changed.append(f"steps {steps} -> {fit}")
            uncut, steps = steps, fit
    max_steps = steps if uncut else s.max_steps
    return Plan(
        steps=steps,
        max_steps=max_steps,
        batch_size=s.batch_size,
        questions_per_chunk=questions,
        eval_max_chunks=s.eval_max_chunks,
        eval_questions=eval_chunks * questions,
        passage_words=words,
        passage_stride=stride,
        seconds=seconds(steps),
        budget_seconds=budget_seconds,
        changed=tuple(changed),
        spent_seconds=round(spent_seconds, 1),
        uncut_steps=uncut,
    )


def measure_costs(model: Any, texts: list[str], cfg: Any, device: str, scratch: Path) -> Costs:
    """Costs on this machine: WARMUP_STEPS training steps of WARMUP_ROWS rows (after one untimed step),
    scaled to cfg.batch_size, the encoding of a few chunks, their passages and questions, all with a copy of `model`
    in the precision the run trains in, and saving the model once into a folder under `scratch`.
    `texts` are the corpus's chunks: the columns' lengths come from across them (`column_lengths`)."""
    import copy
    import shutil
    import tempfile

    import torch

    from .training.trainer import _ranking_loss  # imports torch: only a run that plans pays for it

    precision = resolve_precision(cfg.precision, device)
    sample, lengths, columns = warmup_batch(model, texts, cfg.queries_per_row)
    tokenizer = model.tokenizer
    # Questions of a typical length, in the corpus's own words (the start of each sampled chunk).
    questions = [
        tokenizer.decode(tokenizer(t, add_special_tokens=False)["input_ids"][: lengths.typical_question - 2])
        for t in sample
    ]
    with encoding_in(precision, device):
        # Untimed: the first call pays for allocations and kernel choices the run pays once.
        model.encode(sample[:2], batch_size=2)
        start = time.perf_counter()
        model.encode(sample, batch_size=WARMUP_ROWS)
        encode = (time.perf_counter() - start) / len(sample)
        start = time.perf_counter()
        model.encode(questions, batch_size=WARMUP_ROWS)
        query = (time.perf_counter() - start) / len(questions)
        passage = None
        if passages := warmup_passages(sample, cfg.passage_words, cfg.passage_stride):
            start = time.perf_counter()
            model.encode(passages, batch_size=WARMUP_ROWS)
            passage = (time.perf_counter() - start) / len(passages)
    trained = copy.deepcopy(model)
    trained.train()
    loss = _ranking_loss(trained, cfg, with_negatives=False)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=cfg.learning_rate)
    features = [{k: v.to(device) for k, v in col.items()} for col in columns]
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    # Autocast around the model's forward, as accelerate puts it in training, and not around the loss: with
    # gradient caching (--mini-batch-size) the backward pass encodes the batch again, and that pass must run in
    # autocast too. Around the loss only, it ran in fp32: 8 rows of the four PDFs' chunks took 3.59 s cached at 8
    # against 1.62 s uncached (2.2x); with the forward wrapped, 2.64 s against 1.71 s (1.54x). Training's own ratio
    # (bench.train_memory, the Debian manuals) is 1.18-1.22: the warm-up still prices a cached step high.
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=dtype or torch.float32, enabled=dtype is not None)
    trained.forward = autocast(trained.forward)
    times = []
    for _ in range(WARMUP_STEPS + 1):
        start = time.perf_counter()
        # Copies: the model's forward adds its outputs to each feature dict.
        value = loss([dict(f) for f in features], None)
        value.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    del trained, optimizer
    step = step_price(times[1:], cfg.batch_size)
    folder = Path(tempfile.mkdtemp(prefix="plan-", dir=scratch))
    try:
        start = time.perf_counter()
        model.save(str(folder), safe_serialization=True)
        save = time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Costs(
        step_seconds=step, encode_seconds=encode, query_seconds=query, save_seconds=save, passage_seconds=passage
    )


def warmup_passages(sample: list[str], min_words: int, stride: int) -> list[str]:
    """Up to 4 * WARMUP_ROWS of the passages of the warm-up's chunks, from across them (none without passages).

    >>> chunk = " ".join(f"Sentence number {i} has six words." for i in range(12))
    >>> len(warmup_passages([chunk] * 8, 12, 1)), warmup_passages([chunk], 0, 1)
    (32, [])
    """
    passages = [p for text in sample for p in passages_of(text, min_words, stride)]
    return warmup_rows(passages, 4 * WARMUP_ROWS)


def step_price(times: list[float], batch_size: int) -> float:
    """Seconds a step of `batch_size` rows costs, from timed warm-up steps of WARMUP_ROWS rows: their median,
    scaled. One step caught in a slow spell does not set the price.

    >>> step_price([3.1, 19.7, 3.3], 32)
    13.2
    >>> step_price([3.0, 3.4], 32)
    12.8
    """
    return round(statistics.median(times) * batch_size / WARMUP_ROWS, 6)


@dataclass(frozen=True)
class ColumnLengths:
    """Tokens in each column of a training batch, and in a typical question (special tokens included)."""

    longest_question: int
    typical_question: int
    chunk: int


def column_lengths(model: Any, texts: list[str]) -> ColumnLengths:
    """The columns' lengths a real batch reaches, from DENSITY_SAMPLE chunks from across `texts`: questions at the
    corpus's tokens a word, the chunk column at its CHUNK_LENGTH_QUANTILE length; none over the model's limit."""
    import math

    limit = int(model.max_seq_length)
    wide = warmup_rows(texts, DENSITY_SAMPLE)
    counts = [len(model.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in wide]
    density = sum(counts) / max(1, sum(len(t.split()) for t in wide))
    chunk = sorted(counts)[min(len(counts) - 1, int(CHUNK_LENGTH_QUANTILE * len(counts)))] + 2
    return ColumnLengths(
        longest_question=min(limit, math.ceil(MAX_QUERY_WORDS * density) + 2),
        typical_question=min(limit, math.ceil(TYPICAL_QUESTION_WORDS * density) + 2),
        chunk=min(limit, chunk),
    )


def warmup_batch(
    model: Any, texts: list[str], queries_per_row: int
) -> tuple[list[str], ColumnLengths, list[dict[str, Any]]]:
    """The warm-up's WARMUP_ROWS chunks from across `texts`, the column lengths of the whole corpus
    (`column_lengths`), and its training batch: `queries_per_row` question columns and a chunk column of those
    chunks, each cut or padded to exactly its length, so that the price depends on the corpus's lengths, not on
    which chunks were sampled."""
    sample = ((warmup_rows(texts) or ["text"]) * WARMUP_ROWS)[:WARMUP_ROWS]
    lengths = column_lengths(model, texts or sample)
    columns = [
        dict(model.tokenizer(sample, padding="max_length", truncation=True, max_length=n, return_tensors="pt"))
        for n in [lengths.longest_question] * queries_per_row + [lengths.chunk]
    ]
    return sample, lengths, columns


# What a plan depends on besides the chunks: a rerun with the same chunks and these reuses plan.json
# as it is, so that its choices (which key the later stages) do not move with a new measurement.
PLAN_SETTINGS = (
    "time_budget",
    "base_model",
    "generator",
    "device",
    "precision",
    "questions_per_chunk",
    "lexical_per_chunk",
    "queries_per_row",
    "batch_size",
    "epochs",
    "max_steps",
    "eval_fraction",
    "eval_max_chunks",
    "val_fraction",
    "val_max_chunks",
    "passage_words",
    "passage_stride",
    "mini_batch_size",
    "matryoshka_dims",
    "evals",
)


# The fields of Sizes that are settings of the run, read from its Config by name (the rest are measured).
_SIZES_FROM_CONFIG = tuple(
    f.name
    for f in fields(Sizes)
    if f.name not in ("n_chunks", "passages_per_chunk", "passages_per_chunk_no_overlap", "written", "spans")
)


def sizes_of(cfg: Any, chunks: list[Chunk], vocabulary: frozenset[str] | None = None) -> Sizes:
    """The corpus and the configured settings a plan starts from, with what each chunk yields: the generator's
    questions where it runs here (`questions_written`) and the BM25-labelled spans. `vocabulary`: the base
    model's words, as the generate stage gives the offline generator."""
    chunk_texts = [c.text for c in chunks]
    n = len(chunk_texts)

    def per_chunk(stride: int) -> float:
        units = retrieval_units(chunk_texts, cfg.passage_words, stride) if cfg.passage_words else None
        return (len(units.texts) - n) / n if units is not None and n else 0.0

    return Sizes(
        n_chunks=n,
        passages_per_chunk=per_chunk(cfg.passage_stride),
        passages_per_chunk_no_overlap=per_chunk(0),
        **{name: getattr(cfg, name) for name in _SIZES_FROM_CONFIG},
        written=questions_written(cfg, chunks, vocabulary),
        spans=tuple(span_counts(chunks, cfg.lexical_per_chunk)),
    )


def questions_written(cfg: Any, chunks: list[Chunk], vocabulary: frozenset[str] | None = None) -> tuple[int, ...]:
    """The questions the run's generator writes for each chunk at cfg.questions_per_chunk, counted by running it
    (the offline generator: 11 s for the Debian manuals' 3,918 chunks), before the filters drop a few; () for an
    LLM generator, which writes what it is asked for and is not called to plan. (The template baseline writes one
    per theme whatever it is asked for; a budget that lowers questions_per_chunk counts it as writing fewer.)"""
    if cfg.generator in LLM_GENERATORS or not chunks:
        return ()
    gen = make_generator(cfg.generator, cfg.questions_per_chunk, seed=cfg.seed, vocabulary=vocabulary)
    counts: dict[str, int] = {}
    for pair in gen.generate(chunks, random.Random(cfg.seed)):
        counts[pair.chunk_id] = counts.get(pair.chunk_id, 0) + 1
    return tuple(counts.get(c.id, 0) for c in chunks)


def planned_config(cfg: Any, plan: Plan) -> Any:
    """`cfg` with the plan's choices (unchanged without a budget)."""
    if not plan.budget_seconds:
        return cfg
    return dataclasses.replace(
        cfg,
        questions_per_chunk=plan.questions_per_chunk,
        max_steps=plan.max_steps,
        eval_max_chunks=plan.eval_max_chunks,
        passage_words=plan.passage_words,
        passage_stride=plan.passage_stride,
    )


def training_deadline(plan: Plan | None, started: float) -> Deadline | None:
    """When training ends under `plan`'s budget, for a run that started at `started` (a time.perf_counter()
    value; None without a budget): the budget less what evaluation and saving were planned to take, and
    less half the planner's margin, kept for what follows the last step (the WiSE mix, the forgetting guard,
    saving: 38 s of a 30-minute run on 3,918 chunks) and for estimates that run long. Training that runs
    faster than planned may take more steps before then, up to the plan's `uncut_steps`.

    >>> p = Plan(90, 90, 32, 4, 100, 400, 0, 0, {"generate": 80.0, "train": 975.0, "evaluate": 400.0, "other": 15.0}, 1800.0)
    >>> training_deadline(p, started=1000.0)
    Deadline(at=2250.0, most_steps=0)
    >>> training_deadline(Plan(90, 90, 32, 4, 100, 400, 0, 0, p.seconds), 1000.0) is None
    True
    """
    if plan is None or not plan.budget_seconds:
        return None
    at = started + plan.budget_seconds * (1 - MARGIN / 2) - plan.seconds["evaluate"] - plan.seconds["other"]
    return Deadline(at=at, most_steps=plan.uncut_steps)


def plan_for_run(run: Any, chunk_key: str, started: float) -> tuple[Plan, bool]:
    """The run's plan, and whether it is plan.json's: it is when it was made for the same chunks and settings,
    else it is measured now. `started`: when the run started (time.perf_counter()); what it spent until the plan,
    the warm-up included, is gone from its budget."""
    cfg = run.cfg
    inputs = {"chunk_key": chunk_key, **{k: cfg.to_dict()[k] for k in PLAN_SETTINGS}}
    path = run.files.plan
    if path.exists():
        try:
            saved = read_json(path)
            # A plan made before "generator" was a plan setting counted no generator: it stays the plan (its
            # choices key the later stages, and a budgeted run planned again would train again).
            if {"generator": inputs["generator"]} | saved.get("inputs", {}) == inputs:
                return Plan(**_without_totals(saved["plan"])), True
        except Exception as e:  # a damaged plan.json is measured again, and said so
            run.note(f"plan.json could not be read ({type(e).__name__}); measuring again")
    chunks = read_jsonl(run.files.chunks, Chunk)
    model = run.model("base")
    costs = measure_costs(model, [c.text for c in chunks], cfg, pick_device(cfg.device), run.run_dir)
    sizes = sizes_of(cfg, chunks, word_vocabulary(model.tokenizer))
    budget = parse_duration(cfg.time_budget) if cfg.time_budget else 0.0
    plan = plan_run(sizes, costs, budget, time.perf_counter() - started)
    write_json(path, {"inputs": inputs, "costs": asdict(costs), "plan": plan.to_dict()})
    return plan, False


def warmup_rows(texts: list[str], n: int = WARMUP_ROWS) -> list[str]:
    """`n` chunks from across the corpus, the middle of each n-th part of it, not its first (often front matter).

    >>> warmup_rows([str(i) for i in range(100)], 4)
    ['12', '37', '62', '87']
    >>> warmup_rows(["a", "b"], 4)
    ['a', 'b']
    """
    if len(texts) <= n:
        return list(texts)
    return [texts[(2 * i + 1) * len(texts) // (2 * n)] for i in range(n)]


def _without_totals(plan: dict[str, Any]) -> dict[str, Any]:
    """Plan's fields from its to_dict()."""
    return {k: v for k, v in plan.items() if k != "total_seconds"} | {"changed": tuple(plan["changed"])}
