"""The document axis: its contract reader, safe edXML reading, the variants, the check helpers, the generator
and the scenario steps (one thread sandbox for the module)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from haicap.axis_contract import axis_contract, parse_axis_contract
from haicap.conformance.checks.document_axis import acknowledgement_problems, code_findings, delivered_sequence
from haicap.contract_registry import default_registry
from haicap.data_generators.edxml_packages import EdxmlGenerator
from haicap.edxml import (
    ACCEPT_VARIANTS,
    MALFORMED_VARIANTS,
    EdxmlError,
    PackageSpec,
    build_status,
    parse_xml,
    read_package,
    read_status,
    variant,
)
from haicap.errors import HaicapError

AXIS = axis_contract()
SPEC = PackageSpec.new("000.00.00.G03", "Bộ Nội vụ", [("000.00.00.H26", "UBND Hà Nội")], 42)


def test_order_is_read_from_the_contract() -> None:
    assert AXIS.allows(None, "01") and AXIS.allows("01", "03") and AXIS.allows("03", "06")
    assert not AXIS.allows("01", "06") and not AXIS.allows("06", "05") and not AXIS.allows("02", "03")
    assert AXIS.forbidden_after("06") == AXIS.recipient_codes()
    assert "13" not in AXIS.forbidden_after("03")  # a sender's code is not the recipient's to send
    assert AXIS.path_to("06") == ("01", "03", "06")
    assert AXIS.sequence_problems(["01", "03", "04", "05", "06"]) == []
    assert AXIS.sequence_problems(["01", "03", "03"]) == ["03 (accepted (đã tiếp nhận)) → 03 (accepted (đã tiếp nhận))"]


def test_a_malformed_table_names_where() -> None:
    schema = default_registry().schema_file("axis.schema.json")
    broken = {**schema, "x-status-transitions": {**schema["x-status-transitions"], "next": {"01": ["99"]}}}
    with pytest.raises(HaicapError, match="next/01"):
        parse_axis_contract(broken)


def test_document_id_format() -> None:
    assert AXIS.document_id_problem("000.00.00.H26,2026/12/02,12/UBND-VP", "000.00.00.H26", "2026/12/02") is None
    assert "not {OrganId}" in str(AXIS.document_id_problem("000.00.00.H26-20261202-12"))
    assert "not the sender" in str(AXIS.document_id_problem("000.00.00.H26,2026/12/02,1/CV", "000.00.00.H01"))
    assert "not a date" in str(AXIS.document_id_problem("000.00.00.H26,2026/13/02,1/CV"))


def test_untrusted_xml_is_read_safely() -> None:
    with pytest.raises(EdxmlError) as bomb:
        parse_xml(b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>')
    assert bomb.value.kind == "doctype"
    with pytest.raises(EdxmlError, match="more than"):
        parse_xml(b"<a>" + b"x" * (9 * 1024 * 1024) + b"</a>")


@pytest.mark.parametrize("kind", sorted(MALFORMED_VARIANTS))
def test_every_malformed_variant_is_refused_with_a_reason(kind: str) -> None:
    with pytest.raises(EdxmlError) as refused:
        read_package(variant(f"malformed:{kind}", SPEC))
    assert refused.value.reason


@pytest.mark.parametrize("kind", sorted(ACCEPT_VARIANTS))
def test_every_accept_variant_reads(kind: str) -> None:
    assert read_package(variant(f"accept:{kind}", SPEC)).document_id == SPEC.document_id


def test_status_messages() -> None:
    message = read_status(build_status(SPEC.document_id, "000.00.00.G03", "000.00.00.H26", "03"))
    assert (message.code, message.problems) == ("03", ())
    iso = read_status(build_status(SPEC.document_id, "000.00.00.G03", "000.00.00.H26", "03",
                                   timestamp="2026-12-02T10:00:00"))
    assert "dd/MM/yyyy" in iso.problems[0]
    assert read_status(build_status("", "", "000.00.00.G09", "02", description="bad")).code == "02"
    with pytest.raises(EdxmlError, match="StatusCode"):
        read_status(build_status(SPEC.document_id, "000.00.00.G03", "000.00.00.H26", "07"))


def test_check_helpers() -> None:
    assert delivered_sequence("01", ["01", "03"]) == ["01", "03"]
    assert acknowledgement_problems(["01", "03"], AXIS) == []
    assert "never followed" in acknowledgement_problems(["01"], AXIS)[0]
    assert acknowledgement_problems([], AXIS) == ["no status at all"]
    district = {"Level": "district", "MaTinh": "01", "Active": False, "ReplacedBy": "000.00.00.H26"}
    assert "pre-merger district" in code_findings("From", "001.00.99.H26", district, province="01",
                                                  level="province")[0]
    other = {"Level": "province", "MaTinh": "79", "Active": True}
    assert "of province 79" in code_findings("From", "000.00.00.H29", other, province="01", level="province")[0]
    commune = {"Level": "commune", "MaTinh": "01", "MaXa": "00226", "Active": True}
    assert "commune-level" in code_findings("From", "002.26.00.H26", commune, province="01", level="province")[0]
    assert code_findings("To", "002.26.00.H26", commune, province="01", level="commune", ma_xa="00226") == []
    assert "not in the axis" in code_findings("To", "999.99.99.H99", None, province="01", level="commune")[0]


def test_generator_is_deterministic_and_valid() -> None:
    first = list(EdxmlGenerator(seed=3, province="01").jsonl_batches(50))
    assert first == list(EdxmlGenerator(seed=3, province="01").jsonl_batches(50))
    for package in EdxmlGenerator(seed=3, province="01").packages(50):
        assert read_package(package).attachments


# -- the scenario steps, against one sandbox --------------------------------------------------------
@pytest.fixture(scope="module")
def scenario() -> Iterator[Any]:
    from haicap.counterpart_client import CounterpartClient
    from haicap.province_client import ProvinceClient
    from haicap.sandbox.runner import Sandbox
    from haicap.scenarios.engine import ScenarioContext

    with Sandbox.start(mode="thread") as sb:
        province = ProvinceClient(sb.province_url, officer_token=sb.configs.province.officer_token)
        national = CounterpartClient(sb.national_url, sb.configs.national.control_token)
        yield ScenarioContext(province=province, national=national, data=None,  # type: ignore[arg-type]
                              capabilities=frozenset({"document_axis", "officer_api"}), province_code="01")
        province.close()
        national.close()


def test_scenario_steps(scenario: Any) -> None:
    from haicap.scenarios.engine import steps

    table = steps()
    table["axis_receive_document"].func(scenario, {})
    for status in ("04", "05", "06"):
        table["axis_officer_status"].func(scenario, {"status": status})
    table["axis_send_document"].func(scenario, {"commune": "00226"})
    assert scenario.state["axis_document"] and scenario.state["axis_sent"]


def test_a_copy_to_another_agency_is_not_a_wrong_recipient() -> None:
    """AXIS-06 must accept a send whose To lists the commune asked for and a further active agency (a copy); the
    commune missing, or a retired code among the recipients, is still a finding."""
    from haicap.conformance.checks.document_axis import to_findings

    codes = {"A": {"Active": True, "Level": "commune", "MaTinh": "01", "MaXa": "00004"},
             "B": {"Active": True, "Level": "province", "MaTinh": "01"},
             "C": {"Active": False, "Level": "district", "MaTinh": "01"}}
    assert to_findings(["A", "B"], codes, ("commune", "00004"), "01") == []
    assert to_findings(["B"], codes, ("commune", "00004"), "01")
    assert any("retired" in f for f in to_findings(["A", "C"], codes, ("commune", "00004"), "01"))
    assert to_findings([], codes, ("commune", "00004"), "01") == ["the document names no To/OrganId"]
