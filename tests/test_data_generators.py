"""Synthetic data: valid against the contracts, consistent, deterministic, and its invalid variants really invalid."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import pickle
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import orjson
import pytest

from haicap.cli import main as haicap_main
from haicap.contract_registry import ContractRegistry, default_registry
from haicap.data_generators.agencies import commune_agency_code, ma_ho_so, province_agency_code
from haicap.data_generators.dossiers import OPTIONAL_PATTERNS, SHAPES, VARIED_SHAPES, DossierGenerator
from haicap.data_generators.identity import OLD_PROVINCE_CODES, cccd_birth_info
from haicap.data_generators.invalid import invalid_variants
from haicap.data_generators.legacy import DEFECTS, LegacyDossierGenerator
from haicap.data_generators.people import USERINFO_REF, PersonFactory
from haicap.data_generators.pool import DataPool
from haicap.data_generators.procedures import load_procedures
from haicap.data_generators.taxcode import is_valid_tax_code, make_tax_code, tax_code_check_digit
from haicap.data_generators.templates import Slot, Text, compile_template, escaped
from haicap.data_generators.units import admin_units
from haicap.errors import HaicapError

MOBILE = re.compile(r"^0(3[2-9]|5[2689]|7[06-9]|8[1-9]|9[0-46-9])[0-9]{7}$")


# -- tax codes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code",
    ["0300588569", "0100109106", "0101248141", "0100112437", "0900189284", "0303576603", "0101245486"],
)
def test_published_tax_codes_have_valid_check_digits(code: str) -> None:
    assert is_valid_tax_code(code)
    assert not is_valid_tax_code(code[:9] + str((int(code[9]) + 1) % 10))


def test_tax_code_formula_edges() -> None:
    assert is_valid_tax_code("0100109106-001") and is_valid_tax_code("0100109106001")
    assert not is_valid_tax_code("0100109106-000") and not is_valid_tax_code("010010910")
    # a prefix whose weighted sum is 0 mod 11 gives 10: no check digit exists, and none is generated
    no_digit = next(f"{n:09d}" for n in range(10**8, 10**9) if tax_code_check_digit(f"{n:09d}") is None)
    assert not any(is_valid_tax_code(no_digit + str(d)) for d in range(10))
    rng = random.Random(3)
    codes = [make_tax_code(rng) for _ in range(2000)]
    assert all(is_valid_tax_code(c) for c in codes) and len(set(codes)) > 1990


# -- agencies ----------------------------------------------------------------------------------------
def test_agency_codes_are_unique_and_well_formed() -> None:
    units = admin_units()
    province_codes = [province_agency_code(p.code) for p in units.provinces()]
    assert len(set(province_codes)) == 34
    assert province_agency_code("38") == "000.00.00.H56" and province_agency_code("01") == "000.00.00.H26"
    commune_codes = [commune_agency_code(c.code) for c in units.communes()]
    assert len(set(commune_codes) | set(province_codes)) == 3321 + 34
    pattern = re.compile(default_registry().schema("common.schema.json#/$defs/MaCoQuan")["pattern"])
    assert all(pattern.match(c) for c in commune_codes + province_codes)
    assert commune_agency_code("00226") == "002.26.00.H26"
    province_rule = pytest.importorskip("haicap.sandbox.province.units").commune_agency_code
    assert all(commune_agency_code(c.code) == province_rule(c.code, "000.00.00.H26") for c in units.communes("01"))
    assert ma_ho_so("000.17.22.H56", date(2021, 5, 31), 1) == "000.17.22.H56-210531-0001"
    with pytest.raises(ValueError):
        ma_ho_so("000.17.22.H56", date(2021, 5, 31), 10000)


# -- citizens and enterprises ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def people() -> PersonFactory:
    return PersonFactory(seed=11)


def test_citizens_are_valid_and_consistent(people: PersonFactory) -> None:
    validator = default_registry().validator(USERINFO_REF)
    units = admin_units()
    rng = random.Random(11)
    citizens = [people.citizen(rng) for _ in range(3000)]
    for c in citizens:
        assert validator.violations(c) == [], c
        province, female, year = cccd_birth_info(c["SoDinhDanh"])  # type: ignore[misc]
        assert province in OLD_PROVINCE_CODES
        assert female == (c["GioiTinh"] == "2")
        assert year == int(c["NgayThangNamSinh"][:4])
        assert MOBILE.match(c["SoDienThoai"]), c["SoDienThoai"]
        assert re.match(r"^[a-z]+\.[a-z]+[0-9]{1,2}@[a-z.]+$", c["ThuDienTu"]), c["ThuDienTu"]
        home = c["ThuongTru"]
        assert units.is_current_commune(home["MaXa"], home["MaTinh"])
        assert home["DiaChiDayDu"].endswith(f"{units.commune(home['MaXa']).name}, {home['TenTinh']}")
        assert len(c["HoVaTen"].split()) >= 3
    assert len({c["SoDinhDanh"] for c in citizens}) == len(citizens)
    genders = Counter(c["GioiTinh"] for c in citizens)
    assert 0.4 < genders["2"] / len(citizens) < 0.6
    assert len({c["ThuongTru"]["MaTinh"] for c in citizens}) == 34
    # Vietnamese name order: family name first (Faker vi_VN's own formats put it last)
    assert Counter(c["HoVaTen"].split()[0] for c in citizens).most_common(1)[0][0] in {
        "Nguyễn", "Trần", "Lê", "Phạm", "Vũ", "Đặng", "Bùi", "Dương", "Mai", "Hoàng"}  # fmt: skip
    assert all(c["HoVaTen"].split()[1] != "Thị" for c in citizens if c["GioiTinh"] == "1")


def test_province_filter_and_cccd_profiles() -> None:
    people = PersonFactory(seed=2, province_code="46")
    rng = random.Random(2)
    assert {people.citizen(rng)["ThuongTru"]["MaTinh"] for _ in range(200)} == {"46"}
    profile = people.citizen_for_cccd("001305012345")
    assert profile["SoDinhDanh"] == "001305012345" and profile["GioiTinh"] == "2"
    assert profile["NgayThangNamSinh"].startswith("2005")
    assert profile == people.citizen_for_cccd("001305012345")
    with pytest.raises(ValueError):
        people.citizen_for_cccd("12345")
    with pytest.raises(HaicapError, match="unknown province code"):
        PersonFactory(seed=2, province_code="03")


def test_enterprises_have_valid_tax_codes(people: PersonFactory) -> None:
    validator = default_registry().validator(USERINFO_REF)
    rng = random.Random(5)
    for _ in range(500):
        e = people.enterprise(rng)
        assert validator.violations(e) == [], e
        assert e["LoaiTaiKhoan"] == "2" and is_valid_tax_code(e["MaSoThue"])
        assert e["TenDoanhNghiep"] and admin_units().is_current_commune(e["ThuongTru"]["MaXa"])


# -- dossiers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", list(SHAPES))
def test_dossiers_validate_against_their_contract(shape: str) -> None:
    registry = default_registry()
    validator = registry.validator(SHAPES[shape])
    gen = DossierGenerator(seed=4, province_code="79", shape=shape)
    records = list(gen.records(3000))
    fields = registry.property_names(SHAPES[shape])
    catalogue = {p["MaTTHC"]: p for p in load_procedures()}
    units = admin_units()
    for r in records:
        assert validator.violations(r) == [], r
        assert list(r) == [f for f in fields if f in r], "keys follow the contract's order"
        assert units.is_current_commune(r["MaXa"], "79")
        assert r["MaTTHC"] in catalogue
        if shape != "submission" and "DanhSachLePhi" in r:  # optional in a forwarded dossier
            assert r["DanhSachLePhi"] == catalogue[r["MaTTHC"]]["DanhSachLePhi"]
        if shape == "sync":
            assert r["MaHoSo"].startswith(commune_agency_code(r["MaXa"]) + "-250701-")
            assert r["DuocThanhToanTrucTuyen"] == ("2" if not catalogue[r["MaTTHC"]]["PhiPhaiNop"] else
                                                   r["DuocThanhToanTrucTuyen"])  # fmt: skip
        if "DinhDanhCHS" in r:  # optional in a submission: the identity is the session's
            if catalogue[r["MaTTHC"]]["LoaiDoiTuong"] == "2":
                assert is_valid_tax_code(r["DinhDanhCHS"][1]["SoDinhDanh"])
            birth = cccd_birth_info(r["DinhDanhCHS"][0]["SoDinhDanh"])
            assert birth is not None and birth[0] in OLD_PROVINCE_CODES and 1945 <= birth[2] <= 2007
        assert "SoDienThoai" not in r or MOBILE.match(r["SoDienThoai"])
        assert "Email" not in r or re.match(r"^[a-z]+\.[a-z]+[0-9]{1,2}@[a-z.]+$", r["Email"])
        if "TaiLieuNop" in r:
            components = [c["MaThanhPhanHoSo"] for c in catalogue[r["MaTTHC"]]["ThanhPhanHoSo"]]
            assert [d["MaThanhPhanHoSo"] for d in r["TaiLieuNop"]] == components
            assert all(d["TenTepDinhKem"] == f"{d['MaThanhPhanHoSo']}_{d['TepDinhKemId'][:6]}.pdf"
                       for d in r["TaiLieuNop"])  # fmt: skip
    assert {r["MaTTHC"] for r in records} == set(catalogue)
    if shape != "submission":
        assert len({r["MaHoSo"] for r in records}) == len(records)
    if shape == "sync":
        assert {r["TrangThaiHoSo"] for r in records} == {str(n) for n in range(1, 11)}
        assert Counter(r["KenhThucHien"] for r in records)["2"] > len(records) / 2


@pytest.mark.parametrize("shape", sorted(VARIED_SHAPES))
def test_senders_vary_which_optional_fields_they_send(shape: str) -> None:
    """What a sender sends carries every optional field in some records, none in others (only the contract's
    required fields), a seeded subset in the rest; every optional field is both present and absent; seeded."""
    registry = default_registry()
    fields = registry.property_names(SHAPES[shape])
    required = set(registry.required_names(SHAPES[shape]))
    optional = set(fields) - required
    records = list(DossierGenerator(seed=5, province_code="01", shape=shape).records(400))
    kinds = Counter(frozenset(r) for r in records)
    assert frozenset(fields) in kinds and frozenset(required) in kinds
    assert len(kinds) == OPTIONAL_PATTERNS
    assert all(sum(name in r for r in records) not in (0, len(records)) for name in optional)
    assert records == list(DossierGenerator(seed=5, province_code="01", shape=shape).records(400))
    other = DossierGenerator(seed=6, province_code="01", shape=shape)
    assert other.omitted != DossierGenerator(seed=5, province_code="01", shape=shape).omitted
    sync = list(DossierGenerator(seed=5, province_code="01", shape="sync").records(50))
    assert all(len(r) >= len(registry.required_names(SHAPES["sync"])) for r in sync)


def test_scenario_submissions_name_the_citizen_and_vary_the_rest() -> None:
    from haicap.scenarios.data import PoolScenarioData

    data = PoolScenarioData.build(seed=2, province="01", size=300)
    citizen = data.citizen()
    submissions = [data.submission("1.001193", None, citizen) for _ in range(40)]
    fields = default_registry().property_names(SHAPES["submission"])
    assert all(s["DinhDanhCHS"][0]["SoDinhDanh"] == citizen["SoDinhDanh"] for s in submissions)
    assert all(s["ChuHoSo"] == citizen["HoVaTen"] and list(s) == [f for f in fields if f in s] for s in submissions)
    assert len({frozenset(s) for s in submissions}) > 1  # the other optional fields vary


def test_dossier_dates_roll_over_and_sequences_stay_in_range() -> None:
    gen = DossierGenerator(seed=1, province_code="01", shape="sync", per_commune_per_day=2)
    records = list(gen.records(gen.per_day * 3))
    days = Counter(r["MaHoSo"].split("-")[1] for r in records)
    assert sorted(days) == ["250701", "250702", "250703"]
    assert len({r["MaHoSo"] for r in records}) == len(records)


def test_jsonl_lines_are_canonical_json_and_streams_cross_batches_and_days() -> None:
    """The fast path writes exactly what orjson would write for the parsed record, over batch and day edges."""
    gen = DossierGenerator(seed=6, province_code="01", shape="forwarded")  # 9,999 a day at most, 4,096 a batch
    count = gen.per_day + 5000
    batches = list(gen.jsonl_batches(count))
    assert len(batches) > 3 and all(c.endswith(b"\n") and c.count(b"\n") == n for n, c in batches)
    chunks = [c for _, c in batches]
    lines = b"".join(chunks).splitlines()
    assert len(lines) == count
    validator = default_registry().validator(SHAPES["forwarded"])
    days: dict[str, list[int]] = {}
    for line in lines:
        record = json.loads(line)
        assert orjson.dumps(record) == line
        day, sequence = record["MaHoSo"].split("-")[1:]
        days.setdefault(day, []).append(int(sequence))
    assert {d: len(s) for d, s in days.items()} == {"250701": gen.per_day, "250702": 5000}
    assert all(s == list(range(1, len(s) + 1)) for s in days.values())
    assert all(validator.violations(json.loads(line)) == [] for line in lines[gen.per_day - 100 : gen.per_day + 100])
    again = DossierGenerator(seed=6, province_code="01", shape="forwarded").jsonl_batches(count)
    assert b"".join(c for _, c in again) == b"".join(chunks)


def test_template_compiler_escapes_like_orjson() -> None:
    tricky = 'a "quoted" \\ back\nslash 100% %s Đặng\u0001'
    template, slots = compile_template(
        {tricky: [Text(tricky, Slot("n")), Slot("raw"), 1.5, None, True, {"k": Text(Slot("s"))}]}
    )
    assert slots == ("n", "raw", "s")
    line = template % (b"0007", b"false", escaped(tricky))
    assert line == orjson.dumps({tricky: [tricky + "0007", False, 1.5, None, True, {"k": tricky}]})


def test_dossier_fields_come_from_the_contract(tmp_path: Path) -> None:
    """Drop Email from the contract: the generator stops emitting it. Make a new field required: it refuses."""
    contracts = tmp_path / "contracts"
    shutil.copytree(default_registry().root, contracts)
    path = contracts / "schemas" / "dossier.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    del schema["$defs"]["DossierSubmission"]["properties"]["Email"]
    path.write_text(json.dumps(schema), encoding="utf-8")
    gen = DossierGenerator(seed=1, province_code="01", registry=ContractRegistry(contracts))
    records = list(gen.records(50))
    assert all("Email" not in r for r in records) and any("SoDienThoai" in r for r in records)
    schema["$defs"]["DossierSubmission"]["required"].append("MaMoi")
    schema["$defs"]["DossierSubmission"]["properties"]["MaMoi"] = {"type": "string"}
    path.write_text(json.dumps(schema), encoding="utf-8")
    with pytest.raises(HaicapError, match="requires MaMoi"):
        DossierGenerator(seed=1, province_code="01", registry=ContractRegistry(contracts))


def test_same_seed_same_records_other_seed_other_records() -> None:
    a = list(DossierGenerator(seed=9, shape="sync").records(300))
    b = list(DossierGenerator(seed=9, shape="sync").records(300))
    c = list(DossierGenerator(seed=10, shape="sync").records(300))
    assert a == b and a != c


# -- invalid variants --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", list(SHAPES))
def test_invalid_variants_are_invalid_as_labelled(shape: str) -> None:
    validator = default_registry().validator(SHAPES[shape])
    units = admin_units()
    procedures = {p["MaTTHC"] for p in load_procedures()}
    records = DossierGenerator(seed=3, province_code="01", shape=shape).records(400)
    enterprise = next(r for r in records if len(r.get("DinhDanhCHS", [])) > 1)
    before = copy.deepcopy(enterprise)
    variants = invalid_variants(enterprise, shape)
    labels = {v.label for v in variants}
    assert {"cccd-too-short", "cccd-century-mismatch", "commune-pre-merger", "missing-required",
            "tax-code-checksum", "phone-format", "email-format"} <= labels  # fmt: skip
    if shape != "submission":
        assert "date-format" in labels and "dossier-code-format" in labels
    for v in variants:
        violations = validator.violations(v.record)
        if v.detectable_by == "schema":
            assert violations, v.label
            if v.label != "unknown-field":
                assert v.field in {x.field for x in violations}, (v.label, violations)
        else:
            assert violations == [], v.label
    for v in (v for v in variants if v.detectable_by == "semantic"):
        if v.label == "commune-pre-merger":
            assert not units.is_current_commune(v.record["MaXa"])
        elif v.label == "commune-other-province":
            assert not units.is_current_commune(v.record["MaXa"], "01")
        elif v.label == "tax-code-checksum":
            assert not is_valid_tax_code(v.record["DinhDanhCHS"][1]["SoDinhDanh"])
        elif v.label == "email-format":
            assert "@" not in v.record["Email"]
        elif v.label == "procedure-unknown":
            assert v.record["MaTTHC"] not in procedures
        elif v.label == "cccd-century-mismatch":
            number = v.record["DinhDanhCHS"][0]["SoDinhDanh"]
            assert number != enterprise["DinhDanhCHS"][0]["SoDinhDanh"]
            assert cccd_birth_info(number)[2] != cccd_birth_info(enterprise["DinhDanhCHS"][0]["SoDinhDanh"])[2]
        else:  # pragma: no cover - a new semantic label needs its check here
            pytest.fail(f"no check for semantic variant {v.label}")
    assert enterprise == before, "variants are copies"


# -- legacy datasets ---------------------------------------------------------------------------------
def test_legacy_dossiers_map_old_units_and_plant_the_manifested_defects() -> None:
    units = admin_units()
    gen = LegacyDossierGenerator(seed=5, province_code="25", defect_rate=0.1)
    records = list(gen.records(2000))
    manifest = gen.manifest.as_dict()
    assert manifest["source_records"] == 2000 and manifest["written"] == len(records)
    found: dict[str, set[str]] = {d: set() for d in DEFECTS}
    seen = Counter(r["MaHoSo"] for r in records)
    validator = default_registry().validator(SHAPES["sync"])
    for r in records:
        old = r["HoSoCu"]
        assert old["MaTinh"] in ("17", "25", "26")
        assert r["KyVong"] == {"MaXa": [c.code for c in units.new_communes_for_legacy(old["MaXa"])], "MaTinh": "25"}
        if r["MaXa"] == old["MaXa"] and not units.is_current_commune(r["MaXa"]):
            found["unconverted"].add(r["MaHoSo"])
        elif r["MaXa"] not in r["KyVong"]["MaXa"]:
            found["wrong-mapping"].add(r["MaHoSo"])
            assert units.is_current_commune(r["MaXa"], "25")
        else:
            assert validator.violations({k: v for k, v in r.items() if k not in ("HoSoCu", "KyVong")}) == []
        if seen[r["MaHoSo"]] == 2:
            found["duplicated"].add(r["MaHoSo"])
    dropped = set(manifest["defects"]["dropped"])
    assert not dropped & set(seen) and len(dropped) + len(seen) == 2000
    found["dropped"] = dropped
    assert {d: sorted(ids) for d, ids in found.items()} == {d: sorted(ids) for d, ids in manifest["defects"].items()}
    assert all(manifest["defect_counts"][d] > 20 for d in DEFECTS)
    assert any(len(r["KyVong"]["MaXa"]) > 1 for r in records), "split wards appear"
    clean = LegacyDossierGenerator(seed=5, province_code="25")
    assert len(list(clean.records(100))) == 100 and clean.manifest.as_dict()["defect_counts"] == dict.fromkeys(
        DEFECTS, 0)  # fmt: skip


# -- pool --------------------------------------------------------------------------------------------
def test_pool_entries_are_consistent_and_the_pool_pickles_as_its_recipe() -> None:
    pool = DataPool.build(seed=8, size=300, province="01")
    registry = default_registry()
    for i in range(0, 600, 7):
        citizen = pool.citizen(i)
        for shape, ref in SHAPES.items():
            record = pool.dossier(i, shape)
            assert registry.validator(ref).violations(record) == [], (shape, record)
            assert "DinhDanhCHS" not in record or record["DinhDanhCHS"][0]["SoDinhDanh"] == citizen["SoDinhDanh"]
        assert json.loads(pool.submission_json(i)) == pool.submission(i)
    assert pool.citizen(5) == pool.citizen(305)
    blob = pickle.dumps(pool)
    assert len(blob) < 200
    clone = pickle.loads(blob)
    assert [clone.submission_json(i) for i in range(300)] == [pool.submission_json(i) for i in range(300)]
    fresh = pool.submission(1)
    fresh["MaXa"] = "x"
    assert pool.submission(1)["MaXa"] != "x"


# -- CLI ---------------------------------------------------------------------------------------------
def _run(*args: str) -> int:
    return haicap_main(["data", *args])


@pytest.mark.parametrize("kind", ["citizens", "enterprises", "dossiers", "legacy-dossiers"])
def test_cli_same_seed_byte_identical(tmp_path: Path, kind: str) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    base = ["generate", "--kind", kind, "--count", "500", "--province", "01", "--quiet"]
    assert _run(*base, "--seed", "1", "--out", str(a)) == 0
    assert _run(*base, "--seed", "1", "--out", str(b)) == 0
    assert _run(*base, "--seed", "2", "--out", str(c)) == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    lines = a.read_bytes().splitlines()
    assert len(lines) >= 450 and all(json.loads(line) for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_cli_csv_has_contract_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d.csv"
    assert _run("generate", "--kind", "dossiers", "--shape", "sync", "--count", "20", "--format", "csv",
                "--out", str(out)) == 0  # fmt: skip
    header, *rows = out.read_text(encoding="utf-8").splitlines()
    assert header.split(",") == default_registry().property_names(SHAPES["sync"])
    assert len(rows) == 20
    err = capsys.readouterr().err
    assert "100% 20/20" in err and "wrote 20 dossiers" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "people"], "unknown kind 'people'; valid kinds: citizens, enterprises, dossiers, legacy-dossiers"),
        (["--kind", "citizens", "--province", "03"], "unknown province code '03'; valid codes: 01, 04"),
        (["--kind", "citizens", "--format", "xml"], "unknown format 'xml'; valid formats: jsonl, csv"),
        (["--kind", "dossiers", "--shape", "x"], "unknown shape 'x'; valid shapes: submission, forwarded, sync"),
        (["--kind", "citizens", "--count", "0"], "--count must be a positive number of records, got 0"),
        (["--kind", "citizens", "--count", "-5"], "--count must be a positive number of records, got -5"),
    ],
)
def test_cli_bad_input_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "x.jsonl"
    argv = ["generate", "--count", "5", "--out", str(out), *args]
    assert _run(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("haicap: error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_cli_unwritable_path_and_no_partial_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-dir" / "x.jsonl"
    assert _run("generate", "--kind", "citizens", "--count", "5", "--out", str(missing)) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "No such file or directory" in err
    # a failure in the middle of writing leaves neither the file nor a temporary behind
    from haicap.data_generators import dossiers

    original = dossiers.DossierGenerator._batch
    calls = {"n": 0}

    def failing(self, *a, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 1:  # the first batch is already in the temporary file
            raise OSError(28, "No space left on device")
        return original(self, *a, **kw)

    monkeypatch.setattr(dossiers.DossierGenerator, "_batch", failing)
    out = tmp_path / "big.jsonl"
    assert _run("generate", "--kind", "dossiers", "--count", "10000", "--out", str(out), "--quiet") == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def restore_devices() -> Iterator[None]:
    """A regression (renaming the temporary file onto the device) would leave the machine without /dev/null:
    put the character devices back (as root) after the test, which still fails on its own assertions."""
    yield
    for path, minor in ((os.devnull, 3), ("/dev/full", 7)):
        with contextlib.suppress(OSError):
            if os.path.lexists(path) and not stat.S_ISCHR(os.lstat(path).st_mode):
                os.unlink(path)
                os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
                os.chmod(path, 0o666)


@pytest.mark.usefixtures("restore_devices")
def test_cli_devices_are_written_not_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handler = signal.getsignal(signal.SIGTERM)
    assert _run("generate", "--kind", "dossiers", "--count", "5", "--out", os.devnull) == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert "wrote 5 dossiers to /dev/null" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is handler  # the SIGTERM handler only lives while writing
    # the planted-defect manifest has no sensible default next to a device: none, unless asked for
    manifest = tmp_path / "m.json"
    assert _run("generate", "--kind", "legacy-dossiers", "--count", "5", "--out", os.devnull) == 0
    assert not Path(f"{os.devnull}.manifest.json").exists()
    assert "no manifest" in capsys.readouterr().err
    assert _run("generate", "--kind", "legacy-dossiers", "--count", "5", "--out", os.devnull,
                "--manifest", str(manifest), "--quiet") == 0  # fmt: skip
    assert json.loads(manifest.read_bytes())["kind"] == "legacy-dossiers"
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    if not os.path.exists("/dev/full"):
        return
    assert _run("generate", "--kind", "dossiers", "--count", "5", "--out", "/dev/full") == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last == "haicap: error: cannot write /dev/full: No space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_cli_fifo_receives_the_records_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as fh:
            received.append(fh.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert _run("generate", "--kind", "citizens", "--count", "300", "--out", str(fifo), "--quiet") == 0
    finally:
        with contextlib.suppress(OSError):  # unblock a reader the CLI never served
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
    assert not reader.is_alive()
    lines = received[0].splitlines()
    assert len(lines) == 300 and all(json.loads(line)["SoDinhDanh"] for line in lines)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporary file left


def test_cli_dash_means_standard_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run("generate", "--kind", "dossiers", "--count", "7", "--out", "-") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 7 and all(json.loads(line)["MaTTHC"] for line in lines)  # nothing but records
    assert "100% 7/7" in err and "wrote 7 dossiers to standard output" in err
    assert _run("generate", "--kind", "citizens", "--count", "3", "--format", "csv", "--out", "-", "--quiet") == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "haicap.cli", "data", "generate", "--kind", "dossiers", "--count", "100000000",
         "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not any(p.name.endswith(".part") for p in tmp_path.iterdir()):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the temporary file never appeared"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
    assert rc == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_cli_units_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "u.json"
    assert _run("units", "--province", "01", "--format", "json", "--out", str(out)) == 0
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert len(rows) == 126 and rows[0]["MaXa"] == "00004" and rows[0]["MaCoQuan"] == commune_agency_code("00004")
    assert _run("units", "--legacy", "--province", "26", "--format", "csv") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("MaXaCu,TenXaCu") and len(lines) == 1 + len(admin_units().legacy_wards("26"))
    assert _run("units", "--format", "yaml") == 2
    assert "valid formats: csv, json" in capsys.readouterr().err


def test_a_manifest_that_would_replace_the_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.jsonl"
    assert _run("generate", "--kind", "legacy-dossiers", "--count", "5", "--manifest", str(out),
                "--out", str(out), "--quiet") == 2
    assert "the manifest would replace the data" in capsys.readouterr().err and not out.exists()


def test_an_unwritable_manifest_is_refused_before_any_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lm.jsonl"
    assert _run("generate", "--kind", "legacy-dossiers", "--count", "5", "--manifest",
                str(tmp_path / "missing" / "m.json"), "--out", str(out), "--quiet") == 2
    err = capsys.readouterr().err
    assert f"folder {tmp_path / 'missing'} does not exist" in err and not out.exists()


@pytest.mark.parametrize(("flag", "value", "kind"), [("--shape", "sync", "citizens"),
                                                     ("--defect-rate", "0.1", "dossiers"),
                                                     ("--manifest", "m.json", "enterprises")])
def test_a_flag_for_another_kind_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str,
                                           value: str, kind: str) -> None:
    assert _run("generate", "--kind", kind, "--count", "5", flag, value, "--out", str(tmp_path / "o")) == 2
    kinds = {"--shape": "dossiers", "--defect-rate": "legacy-dossiers or conversion",
             "--manifest": "legacy-dossiers"}[flag]
    assert capsys.readouterr().err.strip().endswith(f"{flag} applies to --kind {kinds} only, not to {kind}")


def test_progress_off_a_terminal_is_whole_lines() -> None:
    import io

    from haicap.data_generators.output import Progress

    stream = io.StringIO()  # not a TTY: no carriage returns, every update on its own line
    progress = Progress(10, "dossiers -> f", stream=stream)
    progress.update(5)
    progress.update(10, final=True)
    lines = stream.getvalue().split("\n")
    assert "\r" not in stream.getvalue() and lines[-1] == "" and len(lines) == 3
    assert lines[0].startswith("dossiers -> f:  50% 5/10") and lines[1].startswith("dossiers -> f: 100% 10/10")


def test_the_supplement_placeholder_is_a_valid_document() -> None:
    """A submission without TaiLieuNop (the generators now send some) is supplemented with the step's placeholder:
    it must itself be a valid TaiLieuNopItem."""
    from haicap.scenarios.steps import _placeholder_document

    validator = default_registry().validator("sync.schema.json#/$defs/TaiLieuNopItem")
    assert validator.violations(_placeholder_document()) == []
