"""README.md stays true: its quick start is what CI runs, and its fault/check tables mirror the registries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


def test_the_example_profile_is_valid_and_registers_the_post_logout_redirect(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's profile is what a province copies: it must load, and name the post-logout redirect URI the
    counterpart registers (without it SSO-02 fails a correct province)."""
    from haicap.target import load_profile

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    example = text.split("### The profile", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    profile = tmp_path / "my-province.yaml"
    profile.write_text(example, encoding="utf-8")
    loaded = load_profile(profile)
    credentials = loaded.data["credentials"]
    for key, name in credentials.items():
        if key.endswith("_env"):
            monkeypatch.setenv(name, "x")
            assert loaded.secret(key) == "x"
    assert credentials["oidc_post_logout_redirect_uri"].startswith(loaded.data["province_url"])
