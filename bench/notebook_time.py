"""How long the walkthrough notebook's saved run took, read from its own saved output (nothing is run).

    python -m bench.notebook_time [NOTEBOOK]

Prints each stage's seconds (ragtune's "[i/8] stage  12.3s  summary" lines) and their total, the figure the
notebook's first cell quotes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

STAGE_LINE = re.compile(r"^\[\d/\d\] (\w+) +([\d.]+)s ", flags=re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path("notebooks/walkthrough.ipynb")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    saved = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    stages = [(name, float(s)) for name, s in STAGE_LINE.findall(saved)]
    if not stages:
        print(f"notebook_time: no stage lines in the saved output of {path}", file=sys.stderr)
        return 1
    for name, seconds in stages:
        print(f"{name:<9} {seconds:8.1f} s")
    total = sum(s for _, s in stages)
    print(f"{'total':<9} {total:8.1f} s ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
