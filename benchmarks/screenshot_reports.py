"""Render the readiness report (report.html of a certify run) and the scoreboard (board.html) to PNGs in a real
browser, to look at them as a provincial director would. Run by hand:

    .venv/bin/python benchmarks/screenshot_reports.py --report RUN/report.html --board BOARD/board.html --out shots/

Uses Debian's Chromium (``apt-get install -y chromium``), headless, with a new empty profile and no background
networking. Without ``--report``/``--board`` it makes them: a quick certify of the embedded sandbox with two faults
(so "what to fix" has entries) and a scoreboard of that one bundle. Not part of CI (CI installs no Chromium);
tests/test_screenshots.py runs it when a Chromium is installed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["chromium", "screenshot"]

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def chromium() -> str | None:
    """The Chromium binary on PATH (Debian's ``chromium``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 2000, timeout: float = 60.0) -> Path:
    """``page`` (an HTML file) rendered to ``png`` by headless Chromium at ``width`` x ``height``."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("no chromium on PATH (apt-get install -y chromium)")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="haicap-chromium-") as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png.resolve()}",
               f"--window-size={width},{height}", page.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-800:]}")
    return png


def _make_inputs(tmp: Path) -> tuple[Path, Path]:
    """A quick faulty certify run and a board of its bundle."""
    from haicap.cli import main

    run = tmp / "run"
    main(["certify", "--out", str(run), "--province", "79", "--fault", "ignores-callback-checksum",
          "--fault", "unauthenticated-forwarding", "--only", "payment", "--only", "forwarding", "--only", "units"])
    bundles = tmp / "bundles"
    bundles.mkdir()
    shutil.copyfile(run / "bundle.zip", bundles / "79.zip")
    main(["scoreboard", str(bundles), "--out", str(tmp / "board"), "--include-sandbox"])
    return run / "report.html", tmp / "board" / "board.html"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, help="report.html of a certify run (default: made)")
    parser.add_argument("--board", type=Path, help="board.html of a scoreboard (default: made)")
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="folder of the PNGs")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args()
    if chromium() is None:
        print("no chromium on PATH: apt-get install -y chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        report, board = args.report, args.board
        if report is None or board is None:
            made_report, made_board = _make_inputs(Path(tmp))
            report, board = report or made_report, board or made_board
        for page, name in ((report, "report.png"), (board, "board.png")):
            png = screenshot(page, args.out / name, width=args.width, height=args.height)
            print(f"{page} -> {png} ({png.stat().st_size / 1024:,.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
