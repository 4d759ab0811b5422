"""Share of well-formed offline questions, on a seeded sample labelled by hand.

    python -m bench.question_quality sample RUN_DIR [--n 100] [--seed 7]   # print a sample to label
    python -m bench.question_quality score [--labels bench/data/question_labels.csv]

`sample` draws keyphrase and sentence questions from RUN_DIR/pairs.jsonl
(cloze queries are sentences of the chunk, not questions, and are left out) and
prints them as CSV rows with an empty `well_formed` column. A person fills it in:
1 for a question someone could ask as it stands (grammatical, a whole term, no
broken word, link debris or dangling "these"/"the following"), 0 otherwise.
`score` prints the share of 1s per generator version and kind.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections import defaultdict
from pathlib import Path

from ragtune.records import Pair, read_jsonl

DEFAULT_LABELS = Path(__file__).resolve().parent / "data" / "question_labels.csv"
FIELDS = ["version", "kind", "question", "well_formed"]


def sample(run_dir: Path, n: int, seed: int, version: str) -> int:
    pairs = [p for p in read_jsonl(run_dir / "work" / "pairs.jsonl", Pair) if p.kind in ("keyphrase", "sentence")]
    random.Random(seed).shuffle(pairs)
    out = csv.writer(sys.stdout)
    out.writerow(FIELDS)
    for p in pairs[:n]:
        out.writerow([version, p.kind, p.query, ""])
    return 0


def score(labels: Path) -> int:
    tally: dict[tuple[str, str], list[int]] = defaultdict(list)
    with labels.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for key in ((row["version"], row["kind"]), (row["version"], "all")):
                tally[key].append(int(row["well_formed"]))
    print(f"{'version':<10}{'kind':<12}{'n':>5}{'well-formed':>13}")
    for (version, kind), marks in sorted(tally.items()):
        print(f"{version:<10}{kind:<12}{len(marks):>5}{sum(marks) / len(marks):>13.2f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample")
    s.add_argument("run_dir", type=Path)
    s.add_argument("--n", type=int, default=100)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--version", default="current")
    c = sub.add_parser("score")
    c.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    args = ap.parse_args()
    if args.command == "sample":
        return sample(args.run_dir, args.n, args.seed, args.version)
    return score(args.labels)


if __name__ == "__main__":
    sys.exit(main())
