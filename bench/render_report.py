"""Render a run's report.html in headless Chromium and save a screenshot, to look at it as a person would.

    python -m bench.render_report RUN_DIR [--out report.png] [--chromium /usr/bin/chromium]

Prints the screenshot's path and size, and how many of the page's images decoded (naturalWidth > 0,
read back through Chromium's --dump-dom after a script marks them). Needs Debian's chromium
(`apt-get install chromium`). Nothing is fetched: the page is self-contained.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
# Appended to a copy of the page: stamps each image's decoded width into the DOM for --dump-dom.
PROBE = """<script>window.addEventListener('load', () => { document.body.setAttribute('data-decoded',
[...document.images].filter(i => i.complete && i.naturalWidth > 0).length + '/' + document.images.length); });
</script>"""


def chromium(binary: str, profile: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="screenshot path (default RUN_DIR/report.png)")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--height", type=int, default=3200)
    args = ap.parse_args(argv)
    page = args.run_dir / "report.html"
    if not page.is_file():
        print(f"render_report: no {page}", file=sys.stderr)
        return 1
    out = args.out or args.run_dir / "report.png"
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = chromium(args.chromium, f"{tmp}/p1", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
        shot = chromium(
            args.chromium,
            f"{tmp}/p2",
            f"--screenshot={out.resolve()}",
            f"--window-size=1100,{args.height}",
            page.resolve().as_uri(),
        )
    decoded = re.search(r'data-decoded="(\d+)/(\d+)"', dom.stdout)
    if shot.returncode != 0 or not out.is_file():
        print(f"render_report: chromium failed: {shot.stderr[-500:]}", file=sys.stderr)
        return 1
    print(f"screenshot: {out} ({out.stat().st_size:,} bytes)")
    print(f"images decoded: {decoded.group(1)}/{decoded.group(2)}" if decoded else "images decoded: unknown")
    return 0 if decoded and decoded.group(1) == decoded.group(2) else 1


if __name__ == "__main__":
    raise SystemExit(main())
