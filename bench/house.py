"""The shape of the code, for issue 27's acceptance: files of ragtune/ over 500 lines, the longest functions in
training/, stages/ and pipeline.py, and every import of ragtune's own modules made inside a function.

    python -m bench.house

Reads the source only (nothing of ragtune is imported or run), so it takes a second.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ragtune"


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def long_files(limit: int = 500) -> list[tuple[str, int]]:
    """(path, lines) of every file of ragtune/ over `limit` lines, longest first."""
    sizes = [(_relative(p), len(p.read_text(encoding="utf-8").splitlines())) for p in PACKAGE.rglob("*.py")]
    return sorted(((p, n) for p, n in sizes if n > limit), key=lambda item: -item[1])


def long_functions(places: tuple[str, ...] = ("training", "stages", "pipeline.py"), top: int = 5) -> list[str]:
    """The `top` longest functions (lines, signature and docstring included) under `places`."""
    found = []
    for place in places:
        target = PACKAGE / place
        for path in sorted(target.rglob("*.py") if target.is_dir() else [target]):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found.append((node.end_lineno - node.lineno + 1, f"{_relative(path)}:{node.name}"))
    return [f"{n:4d}  {name}" for n, name in sorted(found, reverse=True)[:top]]


def _is_own(node: ast.ImportFrom) -> bool:
    return node.level > 0 or (node.module or "").split(".")[0] == "ragtune"


def imports_in_functions() -> list[str]:
    """file:line and the statement of every import of a ragtune module made inside a function."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for fn in ast.walk(ast.parse(text)):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and _is_own(node):
                    found.append(f"{_relative(path)}:{node.lineno}  {lines[node.lineno - 1].strip()}")
    return sorted(set(found))


def main() -> None:
    files = long_files()
    print(f"files of ragtune/ over 500 lines: {len(files)}")
    for path, n in files:
        print(f"  {n:4d}  {path}")
    print("longest functions in training/, stages/, pipeline.py:")
    for line in long_functions():
        print(f"  {line}")
    inside = imports_in_functions()
    print(f"imports of ragtune's own modules inside a function: {len(inside)}")
    for line in inside:
        print(f"  {line}")


if __name__ == "__main__":
    main()
