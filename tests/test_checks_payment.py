"""Pure helpers of the payment checks: what a province did with a callback it must refuse, and the tamper
defects the checks use exist in the contract's control enum."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from haicap.conformance.checks.payment import CHECKSUM_DEFECTS, TAMPERED, callback_verdict, checksum_defects
from haicap.contract_registry import ContractRegistry, default_registry


@pytest.mark.parametrize(("status", "answer", "said"), [
    (400, {"MaLoi": "01", "MoTaLoi": "MaXacThuc"}, None),
    (404, {"MaLoi": "03"}, None),
    (422, {"MaLoi": "04"}, None),
    (200, {"MaLoi": "00", "MoTaLoi": "ok"}, "accepted (HTTP 200, MaLoi '00')"),
    (200, "OK", "accepted (HTTP 200, MaLoi None)"),
    (200, {"MaLoi": "01"}, "refused with HTTP 200 (expected 4xx), MaLoi '01'"),
    (400, {"MaLoi": "00"}, "answered HTTP 400 but MaLoi '00' (accepted)"),
    (400, "bad", "refused with HTTP 400 without a MaLoi (expected MaLoi != '00')"),
    (500, {"MaLoi": "99"}, "server error (HTTP 500, MaLoi '99')"),
    (302, None, "answered HTTP 302 (expected 4xx with MaLoi != '00')"),
])
def test_callback_verdict_says_what_the_province_did(status: int, answer: object, said: str | None) -> None:
    assert callback_verdict(status, answer) == said


def test_no_answer_is_said_with_its_cause() -> None:
    assert callback_verdict(None, None, "ConnectError: refused") == "no answer (ConnectError: refused)"
    assert callback_verdict(None, None) == "no answer (the connection failed)"


def test_every_tamper_defect_the_checks_use_is_in_the_contract() -> None:
    enum = default_registry().schema("payment.schema.json#/$defs/ControlTamperRequest")["properties"]["defect"]["enum"]
    assert set(TAMPERED) == set(enum)
    assert set(CHECKSUM_DEFECTS) <= set(enum) and len(CHECKSUM_DEFECTS) == len(set(CHECKSUM_DEFECTS))
    assert "wrong-amount" not in CHECKSUM_DEFECTS  # validly signed: PAY-03's case, not a checksum case


def test_an_upper_cased_digest_is_tried_only_when_the_contract_digest_is_lowercase(tmp_path: Path) -> None:
    assert checksum_defects() == CHECKSUM_DEFECTS  # the contract's MaXacThuc is ^[0-9a-f]{64}$
    root = tmp_path / "contracts"
    shutil.copytree(default_registry().root, root)
    path = root / "schemas" / "payment.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["$defs"]["MaXacThuc"]["pattern"] = "^[0-9a-fA-F]{64}$"
    path.write_text(json.dumps(schema), encoding="utf-8")
    assert checksum_defects(ContractRegistry(root)) == tuple(d for d in CHECKSUM_DEFECTS if d != "checksum-uppercase")
