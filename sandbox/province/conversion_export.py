"""The reference province's export of its converted legacy data (``GET /api/v1/conversion-export/{side}``).

A province that converted its dossiers to the two-level units serves both sides for verification: ``before``
(the records as the old system held them) and ``after`` (their conversion), one JSON object per line
(contracts/schemas/conversion.schema.json). The reference province's legacy data is a dataset generated once per
run with haicap's conversion generator (a few thousand dossiers of its province, seeded by the run's officer
credential so each run differs) and converted correctly; each ``conversion-*`` fault plants one defect of its
kind in the first dossier it applies to, at the place the correct conversion would have done the right thing.
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from haicap.sandbox.province.context import ProvinceContext, require_bearer
from haicap.sandbox.province.problems import Problem

__all__ = ["EXPORT_PAIRS", "FAULT_KINDS", "ConversionExport"]

#: dossiers in the reference province's legacy data: enough for every fault to find a dossier it applies to,
#: few enough that the conversion criterion stays within its 2–3 s of a certify run
EXPORT_PAIRS = 2_000
#: fault → the finding kind it plants (haicap.conversion.rules)
FAULT_KINDS: dict[str, str] = {
    "conversion-drops-record": "dropped",
    "conversion-silent-split-pick": "split-undecided",
    "conversion-stale-agency": "agency-not-current",
    "conversion-stale-address": "address-mismatch",
    "conversion-not-digitised": "not-digitised",
}
_SIDES = ("before", "after")


class ConversionExport:
    """Writes the run's dataset on first use (state_dir/conversion) and serves its two sides to officers."""

    def __init__(self, ctx: ProvinceContext) -> None:
        self.ctx = ctx
        self.folder = ctx.config.state_dir / "conversion"
        self._lock = threading.Lock()

    def _files(self) -> tuple[Path, Path]:
        before, after = self.folder / "before.jsonl", self.folder / "after.jsonl"
        with self._lock:
            if not after.exists():
                self._generate(before, after)
        return before, after

    def _generate(self, before: Path, after: Path) -> None:
        from haicap.data_generators.conversion import ConversionPairs

        config = self.ctx.config
        seed = zlib.crc32(config.officer_token.encode())
        pairs = ConversionPairs(seed=seed, province=config.province_code)
        kinds = tuple(kind for fault, kind in FAULT_KINDS.items() if self.ctx.has(fault))
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = after.with_suffix(".partial")
        with before.open("wb") as old, partial.open("wb") as new:
            for record, written in pairs.pairs_with(EXPORT_PAIRS, kinds):
                old.write(orjson.dumps(record) + b"\n")
                for converted in written:
                    new.write(orjson.dumps(converted) + b"\n")
        partial.replace(after)  # other workers see both files or neither

    async def export(self, request: Request) -> Response:
        require_bearer(request, self.ctx.config.officer_token, "officer")
        side = request.path_params["side"]
        if side not in _SIDES:
            raise Problem(404, "Not found", f"no export side {side!r} (before or after)")
        before, after = self._files()
        return FileResponse(before if side == "before" else after, media_type="application/x-ndjson")
