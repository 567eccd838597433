"""Regenerate the tables of README.md that mirror registries (faults, checks), between their markers.

    .venv/bin/python scripts/update_readme.py          # rewrite README.md
    .venv/bin/python scripts/update_readme.py --check  # exit 1 if README.md is out of date (used by the tests)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def fault_table() -> str:
    from haicap.sandbox.province.faults import FAULTS

    rows = ["| fault | criterion it breaks | the defect it reproduces |", "|---|---|---|"]
    for fault in sorted(FAULTS.values(), key=lambda f: (f.breaks, f.id)):
        rows.append(f"| `{fault.id}` | {fault.breaks} | {fault.description} |")
    return "\n".join(rows)


def check_table() -> str:
    from haicap.conformance.registry import all_checks

    rows = ["| id | severity | check | rule | caught faults |", "|---|---|---|---|---|"]
    for c in all_checks():
        faults = ", ".join(f"`{f}`" for f in c.detects)
        rows.append(f"| {c.id} | {c.severity} | {c.title} | {c.rule} | {faults} |")
    return "\n".join(rows)


BLOCKS = {"faults": fault_table, "checks": check_table}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
        if pattern.search(text):
            text = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main() -> int:
    current = README.read_text(encoding="utf-8")
    updated = render(current)
    if "--check" in sys.argv:
        if updated != current:
            print("README.md tables are out of date: run python scripts/update_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
