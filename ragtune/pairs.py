"""Labelled pairs -> fine-tuned model: `ragtune pairs PAIRS.csv --out RUN_DIR`.

Input files hold (sentence1, sentence2, label) with label in [0, 1]: CSV with
those columns, or JSONL with those keys. Alternatives files list one concept
per row (name, description, alternative phrasings); every two phrasings of a
row become a pair labelled 1.0. A seeded, label-stratified split holds pairs
out; Pearson and Spearman of cosine similarity against the labels are measured
on them with the base model and again after training.

Run directory:

    RUN_DIR/train.jsonl, eval.jsonl   the split (versioned LabelledPair JSONL)
    RUN_DIR/metrics.json              {"before": {"pearson", "spearman"}, "after": {…}, "improved", counts}
    RUN_DIR/run.json                  config, input file hashes, training facts
    RUN_DIR/model/                    sentence-transformers folder with a model card README.md
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .config import ConfigError, TrainingArgs, settings_dict
from .errors import PairsError
from .losses import LOSSES, labelled_columns, make_loss
from .records import Counter, LabelledPair, write_json, write_jsonl

MEDIUM_MODEL = "sentence-transformers/all-mpnet-base-v2"
# "" is the bundled all-MiniLM-L6-v2 (see models.resolve_base_model).
PRESETS: dict[str, dict[str, Any]] = {
    # Tuned on tests/data/pairs (bench/pairs_bench.py): 2 epochs at 6e-5 beat 4 at 3e-5 on every subset.
    "small": {"base_model": "", "epochs": 2.0, "batch_size": 16, "learning_rate": 6e-5},
    # Not measured here (no network to fetch the model): mpnet's usual fine-tuning settings.
    "medium": {"base_model": MEDIUM_MODEL, "epochs": 2.0, "batch_size": 16, "learning_rate": 2e-5},
}
PAIR_COLUMNS = ("sentence1", "sentence2", "label")
RUN_VERSION = 1
# Fewer pairs than this cannot give a meaningful held-out correlation.
MIN_PAIRS = 20
# Labels are bucketed by this width for the stratified split.
_BUCKETS = 5

Log = Callable[[str], None]
Progress = Callable[[int, int], None]


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
        need(self.epochs > 0, f"epochs must be > 0, not {self.epochs}")
        need(self.batch_size >= 2, f"batch_size must be >= 2, not {self.batch_size}")
        need(0 < self.learning_rate < 1, f"learning_rate must be in (0, 1), not {self.learning_rate}")
        need(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), not {self.warmup_ratio}")
        need(0 <= self.weight_decay < 1, f"weight_decay must be in [0, 1), not {self.weight_decay}")
        need(0.05 <= self.eval_fraction <= 0.5, f"eval_fraction must be between 0.05 and 0.5, not {self.eval_fraction}")
        need(self.max_steps == -1 or self.max_steps > 0, "max_steps must be -1 (no cap) or > 0")
        need(self.device in ("", "cpu", "cuda", "mps") or self.device.startswith("cuda:"), f"unknown device {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return settings_dict(self)


# ---------------------------------------------------------------- reading inputs


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise PairsError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise PairsError(f"{path} is not UTF-8 text (bad byte at offset {e.start}); re-save it as UTF-8") from None


def _label(value: Any, where: str) -> float:
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
        raise PairsError(f"{where}: label {json.dumps(value)} is not a number; labels must be in [0, 1]")
    try:
        x = float(value)
    except ValueError:
        raise PairsError(f"{where}: label {str(value)!r} is not a number; labels must be in [0, 1]") from None
    if not 0.0 <= x <= 1.0:  # also rejects nan
        raise PairsError(f"{where}: label {value} is outside [0, 1]")
    return x


def _pair(row: dict[str, Any], where: str) -> LabelledPair:
    texts = []
    for col in ("sentence1", "sentence2"):
        text = row[col]
        if not isinstance(text, str):
            raise PairsError(f"{where}: {col} must be text, not {json.dumps(text)}")
        if not text.strip():
            raise PairsError(f"{where}: {col} is empty")
        texts.append(text.strip())
    return LabelledPair(texts[0], texts[1], _label(row["label"], where))


def _csv_rows(path: Path, text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header (lower-cased, stripped) and (line number, row) for each non-blank row."""
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise PairsError(f"{path} is empty") from None
    except csv.Error as e:
        raise PairsError(f"{path}:1: unreadable CSV header ({e})") from None
    rows = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise PairsError(f"{path}:{reader.line_num}: unreadable CSV ({e})") from None
        if not any(c.strip() for c in cells):
            continue
        rows.append((reader.line_num, dict(itertools.zip_longest(header, cells, fillvalue=""))))
    return header, rows


def _missing(path: Path, found: list[str], required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        raise PairsError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(required)} "
            f"(found: {','.join(found) or 'nothing'})"
        )


def load_pairs_file(path: Path) -> list[LabelledPair]:
    """Read a .csv (columns sentence1,sentence2,label) or .jsonl file of labelled pairs.

    Errors name the file and line: `pairs.csv:7: label 1.5 is outside [0, 1]`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise PairsError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .jsonl")
    text = _read_text(path)
    pairs: list[LabelledPair] = []
    if suffix == ".csv":
        header, rows = _csv_rows(path, text)
        _missing(path, header, PAIR_COLUMNS)
        for line, row in rows:
            pairs.append(_pair(row, f"{path}:{line}"))
    else:
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            where = f"{path}:{line}"
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise PairsError(f"{where}: not valid JSON ({e.msg})") from None
            if line == 1 and isinstance(obj, dict) and "ragtune" in obj:
                # The header line of a file ragtune wrote itself (e.g. RUN_DIR/train.jsonl).
                if obj.get("ragtune") != "labelled_pair" or obj.get("version") != 1:
                    raise PairsError(f"{where}: not a ragtune labelled_pair file of version 1 ({raw.strip()[:80]})")
                continue
            if not isinstance(obj, dict):
                raise PairsError(f"{where}: expected a JSON object with keys {', '.join(PAIR_COLUMNS)}")
            missing = [k for k in PAIR_COLUMNS if k not in obj]
            if missing:
                raise PairsError(f"{where}: missing key(s) {', '.join(missing)}")
            pairs.append(_pair(obj, where))
    if not pairs:
        raise PairsError(f"{path} has no pairs")
    return pairs


def phrases_of(row: dict[str, str]) -> list[str]:
    """Every phrasing in one alternatives row: name, description, split alternatives, extra columns.

    >>> phrases_of({"name": "Appium", "description": "", "alternatives": "Appium testing; mobile automation|appium"})
    ['Appium', 'Appium testing', 'mobile automation', 'appium']
    """
    found: list[str] = []
    for col, value in row.items():
        parts = re.split(r"[;|]", value) if col == "alternatives" else [value]
        for p in (p.strip() for p in parts):
            if p and p not in found:
                found.append(p)
    return found


def expand_alternatives(phrases: list[str]) -> list[LabelledPair]:
    """Every two phrasings of one concept make a positive pair (label 1.0).

    >>> [(p.sentence1, p.sentence2) for p in expand_alternatives(["a", "b", "c"])]
    [('a', 'b'), ('a', 'c'), ('b', 'c')]
    """
    return [LabelledPair(a, b, 1.0) for a, b in itertools.combinations(phrases, 2)]


def load_alternatives_file(path: Path, skipped: Counter) -> list[LabelledPair]:
    """Positive pairs from a CSV with columns name, description, alternatives (and any extra columns).

    A row with fewer than two phrasings yields no pair and is counted in `skipped`.
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise PairsError(f"{path}: alternatives must be a .csv file (columns name, description, alternatives)")
    header, rows = _csv_rows(path, _read_text(path))
    _missing(path, header, ("name",))
    pairs: list[LabelledPair] = []
    for line, row in rows:
        if not row.get("name", "").strip():
            raise PairsError(f"{path}:{line}: name is empty")
        phrases = phrases_of({k: v for k, v in row.items() if k})
        if len(phrases) < 2:
            skipped.add("alternatives row with one phrasing", f"{path.name}:{line}")
        pairs += expand_alternatives(phrases)
    if not rows:
        raise PairsError(f"{path} has no rows")
    return pairs


def dedupe(pairs: list[LabelledPair], skipped: Counter) -> list[LabelledPair]:
    """Keep the first pair of each unordered text couple, so a pair is never in both train and eval.

    Pairs files are read before alternatives, so their labels win.
    """
    seen: set[tuple[str, str]] = set()
    kept = []
    for p in pairs:
        key = (p.sentence1, p.sentence2) if p.sentence1 <= p.sentence2 else (p.sentence2, p.sentence1)
        if key in seen:
            skipped.add("duplicate pair", f"{p.sentence1[:40]} / {p.sentence2[:40]}")
            continue
        seen.add(key)
        kept.append(p)
    return kept


def split_pairs(pairs: list[LabelledPair], eval_fraction: float, seed: int) -> tuple[list[LabelledPair], list[LabelledPair]]:
    """Seeded split, stratified by label bucket so that held-out labels span the same range.

    Pairs of identical texts always train: every model scores them 1.0, so
    holding them out would only inflate the held-out correlation.

    >>> ps = [LabelledPair(f"a{i}", f"b{i}", i / 9) for i in range(10)]
    >>> train, held = split_pairs(ps, 0.2, seed=1)
    >>> len(train), len(held), split_pairs(ps, 0.2, seed=1) == (train, held)
    (8, 2, True)
    """
    rng = random.Random(seed)
    buckets: dict[int, list[int]] = {}
    candidates = [i for i, p in enumerate(pairs) if p.sentence1 != p.sentence2]
    for i in candidates:
        p = pairs[i]
        buckets.setdefault(min(int(p.label * _BUCKETS), _BUCKETS - 1), []).append(i)
    # Largest-remainder allocation: the held-out total is round(eval_fraction * n) exactly.
    total = round(eval_fraction * len(candidates))
    quotas = {b: eval_fraction * len(ix) for b, ix in buckets.items()}
    take = {b: math.floor(q) for b, q in quotas.items()}
    for b in sorted(quotas, key=lambda b: (take[b] - quotas[b], b))[: total - sum(take.values())]:
        take[b] += 1
    held: set[int] = set()
    for b in sorted(buckets):
        ix = list(buckets[b])
        rng.shuffle(ix)
        held.update(ix[: take[b]])
    train = [p for i, p in enumerate(pairs) if i not in held]
    return train, [p for i, p in enumerate(pairs) if i in held]


def gather(cfg: PairsConfig) -> tuple[list[LabelledPair], Counter, dict[str, int]]:
    """All pairs of the run (deduplicated), what was skipped, and counts by source."""
    skipped = Counter()
    explicit = [p for f in cfg.pairs_files for p in load_pairs_file(f)]
    alternative = [p for f in cfg.alternatives for p in load_alternatives_file(f, skipped)]
    pairs = dedupe(explicit + alternative, skipped)
    return pairs, skipped, {"n_labelled": len(explicit), "n_from_alternatives": len(alternative)}


# ---------------------------------------------------------------- model and training


def _hf_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


PRESET_HINT = "download it once with network access, pass --base-model PATH to a local copy, or use --preset small"


def resolve_pairs_model(base_model: str, hint: str = PRESET_HINT) -> str:
    """Something `load_model` can open without a long stall: a path, or a Hub id known to be reachable.

    A Hub id already in the local cache is used from there; otherwise, offline
    or when the Hub cannot be reached, a one-line PairsError says what to do
    (transformers would otherwise retry for over a minute).
    """
    from .models import resolve_base_model

    source = resolve_base_model(base_model)
    if not base_model or Path(source).exists():
        return source
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(source, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if _hf_offline():
        raise PairsError(f"{source} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; {hint}")
    from huggingface_hub.errors import RepositoryNotFoundError

    from .hub import get_api

    try:
        get_api().model_info(source, timeout=10)
    except RepositoryNotFoundError:
        raise PairsError(f"{source} is neither a local folder nor a model on the Hugging Face Hub (or it is "
                         "private); check the name or pass a local path") from None
    except Exception as e:  # any failure here means the download below would fail too
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise PairsError(f"{source} is not downloaded and the Hub cannot be reached ({reason}); {hint}") from None
    return source


def train_pairs(model: Any, train: list[LabelledPair], cfg: PairsConfig, work_dir: Path, device: str,
                progress: Progress | None = None, resume: Path | None = None) -> dict[str, Any]:
    """Train `model` in place on labelled pairs; returns steps, seconds and final loss.

    Checkpoints go to `work_dir` (the caller removes it); given `resume` (a checkpoint
    folder there), training continues from it. SIGINT or SIGTERM saves one and raises
    train.TrainingInterrupted.
    """
    from .train import run_trainer

    result = run_trainer(model, labelled_columns(train), make_loss(cfg.loss, model), TrainingArgs.of(cfg), work_dir,
                         device, progress, resume=resume)
    return {"steps": result.steps, "seconds": round(result.seconds, 2), "final_loss": result.final_loss,
            "device": device}


def checkpoint_to_resume(work_dir: Path, key: str, log: Log | None = None) -> Path | None:
    """The newest complete checkpoint an interrupted run with the same `key` left in
    `work_dir`, or None, leaving an empty `work_dir` marked with `key` (a run with other
    settings or inputs starts again, and its checkpoints are removed). A checkpoint cut
    off mid-write is removed, with a note to `log`.
    """
    from .records import atomic_write_text
    from .train import scan_checkpoints

    marker = work_dir / "ragtune_pairs_key"
    if marker.is_file() and marker.read_text(encoding="utf-8", errors="replace") == key:
        newest, broken = scan_checkpoints(work_dir)
        for path, problem in broken:
            shutil.rmtree(path, ignore_errors=True)
            if log is not None:
                then = f"resuming from {newest.name}" if newest is not None else "training starts again"
                log(f"{path.name} cannot be resumed from: {problem}; {then}")
        if newest is not None:
            return newest
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    atomic_write_text(marker, key)
    return None


def _run_key(cfg: PairsConfig, source: str) -> str:
    """What training depends on: ragtune's version, every setting, the inputs' bytes and the model."""
    inputs = {str(p): _sha(p) for p in (*cfg.pairs_files, *cfg.alternatives)}
    parts = [__version__, cfg.to_dict(), inputs, source]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


# ---------------------------------------------------------------- card and run


def metrics_table(metrics: dict[str, Any]) -> str:
    lines = ["| model | Pearson (cosine) | Spearman (cosine) |", "|---|---:|---:|"]
    for label, key in (("base", "before"), ("fine-tuned", "after")):
        lines.append(f"| {label} | {metrics[key]['pearson']:.4f} | {metrics[key]['spearman']:.4f} |")
    return "\n".join(lines)


def render_pairs_card(cfg: PairsConfig, metrics: dict[str, Any], train: dict[str, Any], max_seq_length: int) -> str:
    """The model card for a pairs run: front matter for the Hub, the before/after table, training details."""
    from .card import base_model_id, base_model_label

    hub_base = base_model_id(cfg.base_model)
    front = ["---"] + ([f"base_model: {hub_base}"] if hub_base else []) + [
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags:",
        *(f"- {t}" for t in ("sentence-transformers", "sentence-similarity", "feature-extraction", "ragtune",
                             f"loss:{LOSSES[cfg.loss]}")),
        "model-index:",
        "- name: ragtune-pairs-model",
        "  results:",
        "  - task:",
        "      type: semantic-similarity",
        "      name: Semantic Similarity",
        "    dataset:",
        "      type: ragtune-labelled-pairs-heldout",
        "      name: held-out labelled pairs",
        "    metrics:",
    ]
    for k in ("pearson", "spearman"):
        front += [f"    - type: {k}_cosine", f"      value: {metrics['after'][k]:.4f}", f"      name: {k.title()} Cosine"]
    front.append("---")
    files = ", ".join(p.name for p in cfg.pairs_files) or "(none)"
    alts = ", ".join(p.name for p in cfg.alternatives) or "(none)"
    verdict = ("Both correlations went up." if metrics["improved"]
               else "**The fine-tuned model did not beat the base model on both correlations.**")
    body = f"""
# ragtune-pairs-model

A sentence-transformers model fine-tuned by [ragtune](https://pypi.org/project/ragtune/) from
{base_model_label(cfg.base_model)} on labelled text pairs (similarity labels in [0, 1]).

## Held-out evaluation

Pearson and Spearman correlation between the cosine similarity of each held-out pair and its label
({metrics["n_eval"]} pairs not trained on, split with seed {cfg.seed}; a text of a held-out pair may still occur in
training pairs, so this measures how well the model learned this labelling, not general similarity). {verdict}

{metrics_table(metrics)}

## Training data

- Labelled pairs files: {files} ({metrics["n_labelled"]} pairs)
- Alternatives files: {alts} ({metrics["n_from_alternatives"]} positive pairs, label 1.0)
- After removing duplicates: {metrics["n_pairs"]} pairs; {metrics["n_train"]} for training, {metrics["n_eval"]} held out

## Training details

| setting | value |
|---|---|
| loss | {LOSSES[cfg.loss]} |
| preset | {cfg.preset} |
| epochs | {cfg.epochs} |
| batch size | {cfg.batch_size} |
| learning rate | {cfg.learning_rate} |
| warmup ratio | {cfg.warmup_ratio} |
| weight decay | {cfg.weight_decay} |
| steps | {train["steps"]} |
| seed | {cfg.seed} |
| max sequence length | {max_seq_length} |

## Usage

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("path/to/run/model")
a, b = model.encode(["Mobile Automation with Appium", "Appium mobile testing"], normalize_embeddings=True)
print(float(a @ b))
```

Or from the command line: `python -m ragtune similarity path/to/run "text a" "text b"`.
"""
    return "\n".join(front) + "\n" + body


@dataclass
class PairsResult:
    run_dir: Path
    metrics: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def run_pairs(cfg: PairsConfig, log: Log | None = None, progress: Progress | None = None) -> PairsResult:
    """Read, split, evaluate the base model, train, evaluate again, and write the run directory."""
    from .card import BUNDLED_HUB_ID
    from .models import load_model, pick_device
    from .similarity import evaluate_pairs
    from .train import checkpoint_step

    say = log or (lambda msg: None)
    out = Path(cfg.out)
    if (out / "manifest.json").exists():
        raise PairsError(f"{out} holds a `ragtune run` directory; choose another --out for `ragtune pairs`")
    pairs, skipped, counts = gather(cfg)
    train, held = split_pairs(pairs, cfg.eval_fraction, cfg.seed)
    if len(pairs) < MIN_PAIRS:
        raise PairsError(f"too few pairs: {len(pairs)} after removing duplicates; give at least {MIN_PAIRS}")
    if len(held) < 3:
        raise PairsError(f"only {len(held)} pairs held out for evaluation; raise --eval-fraction "
                         f"(now {cfg.eval_fraction}) or add pairs")
    if len({p.label for p in held}) < 2:
        raise PairsError("all held-out pairs have the same label, so correlation is undefined; "
                         "add pairs with other labels (e.g. unrelated texts labelled 0.0)")
    # Before any output: a missing model should fail as one clean line, like bad input.
    source = resolve_pairs_model(cfg.base_model)
    say(f"pairs: {len(pairs)} ({counts['n_labelled']} labelled, {counts['n_from_alternatives']} from alternatives, "
        f"{skipped.total()} skipped); {len(train)} train, {len(held)} held out")
    device = pick_device(cfg.device)
    say(f"model: {cfg.base_model or BUNDLED_HUB_ID + ' (bundled)'} on {device}")
    model = load_model(source, device)
    before = evaluate_pairs(model, held)
    say(f"before: pearson {before['pearson']:.4f}  spearman {before['spearman']:.4f}")
    # An interrupted run left its checkpoints here; the same command with the same inputs resumes from them.
    work = out / "trainer.tmp"
    checkpoint = checkpoint_to_resume(work, _run_key(cfg, source), say)
    resumed = checkpoint_step(str(checkpoint)) if checkpoint is not None else None
    say(f"training: {LOSSES[cfg.loss]}, {cfg.epochs:g} epochs, batch {cfg.batch_size}, lr {cfg.learning_rate:g}"
        + (f" (resumed at step {resumed})" if resumed is not None else ""))
    trained = train_pairs(model, train, cfg, work, device, progress, resume=checkpoint)
    trained["resumed_at"] = resumed
    after = evaluate_pairs(model, held)
    metrics = {
        "before": before,
        "after": after,
        "improved": after["pearson"] > before["pearson"] and after["spearman"] > before["spearman"],
        "n_pairs": len(pairs),
        "n_train": len(train),
        "n_eval": len(held),
        **counts,
        "skipped": skipped.to_dict(),
    }

    # Save to a temporary folder and swap it in, so a crash never leaves half a model.
    tmp = out / "model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp), safe_serialization=True)
    (tmp / "README.md").write_text(render_pairs_card(cfg, metrics, trained, int(model.max_seq_length)),
                                   encoding="utf-8")
    shutil.rmtree(out / "model", ignore_errors=True)
    tmp.replace(out / "model")
    write_jsonl(out / "train.jsonl", train, LabelledPair)
    write_jsonl(out / "eval.jsonl", held, LabelledPair)
    write_json(out / "run.json", {
        "ragtune": "pairs-run", "version": RUN_VERSION, "ragtune_version": __version__,
        "config": cfg.to_dict(),
        "inputs": {str(p): _sha(p) for p in (*cfg.pairs_files, *cfg.alternatives)},
        "train": trained,
    })
    write_json(out / "metrics.json", metrics)
    # Kept until now, so an interrupt while evaluating or saving still resumes with training done.
    shutil.rmtree(work, ignore_errors=True)
    return PairsResult(run_dir=out, metrics=metrics, train=trained)
