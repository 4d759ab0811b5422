"""Reading labelled pairs: CSV or JSONL files of (sentence1, sentence2, label), alternatives
files (every two phrasings of a concept become a pair labelled 1.0), deduplication and the
label-stratified held-out split."""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
import re
from pathlib import Path
from typing import Any

from ..config import PairsConfig
from ..errors import PairsError
from ..records import LabelledPair, SkipCounter

PAIR_COLUMNS = ("sentence1", "sentence2", "label")
# Fewer held-out labelled pairs than this give no correlation worth reporting; `ragtune pairs` and
# `ragtune run --pairs` both check it (they used to need 3 and 5).
MIN_HELD_OUT = 3
# Labels are bucketed by this width for the stratified split.
_BUCKETS = 5


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


def load_alternatives_file(path: Path, skipped: SkipCounter) -> list[LabelledPair]:
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


def dedupe(pairs: list[LabelledPair], skipped: SkipCounter) -> list[LabelledPair]:
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


def split_pairs(
    pairs: list[LabelledPair], eval_fraction: float, seed: int
) -> tuple[list[LabelledPair], list[LabelledPair]]:
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


def gather(cfg: PairsConfig) -> tuple[list[LabelledPair], SkipCounter, dict[str, int]]:
    """All pairs of the run (deduplicated), what was skipped, and counts by source."""
    skipped = SkipCounter()
    explicit = [p for f in cfg.pairs_files for p in load_pairs_file(f)]
    alternative = [p for f in cfg.alternatives for p in load_alternatives_file(f, skipped)]
    pairs = dedupe(explicit + alternative, skipped)
    return pairs, skipped, {"n_labelled": len(explicit), "n_from_alternatives": len(alternative)}
