"""README.md stays true: its quick start is what CI runs, and its fault/check tables mirror the registries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_fault_and_check_tables_are_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "update_readme.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_quick_start_has_exactly_two_commands_that_ci_reads() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count("<!-- quickstart:run -->") == 1 and text.count("<!-- quickstart:test -->") == 1
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "quickstart run" in ci and "quickstart test" in ci
