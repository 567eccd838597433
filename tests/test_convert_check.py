"""``haicap convert check`` finds exactly the defects the conversion generator planted — no more, no fewer — and a
clean conversion is ready; CSV input, bad records and the province filter."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from haicap.cli import main
from haicap.conversion.check import check_conversion
from haicap.conversion.rules import FINDINGS
from haicap.data_generators.conversion import PLANTED, ConversionPairs
from haicap.errors import HaicapError


def _check(folder: Path, *extra: str) -> tuple[int, dict]:
    code = main(["convert", "check", "--before", str(folder / "before.jsonl"), "--after",
                 str(folder / "after.jsonl"), "--out", str(folder / "out"), *extra])
    return code, json.loads((folder / "out" / "results.json").read_text(encoding="utf-8"))


def test_every_planted_kind_is_a_finding_kind() -> None:
    assert set(PLANTED) <= set(FINDINGS)


@pytest.mark.parametrize(("rate", "count"), [(0.001, 20_000), (0.01, 6_000), (0.05, 3_000)])
def test_finds_exactly_the_planted_defects(tmp_path: Path, rate: float, count: int) -> None:
    manifest = ConversionPairs(seed=3, defect_rate=rate).write(count, tmp_path)
    code, results = _check(tmp_path)
    planted = {(m, kind) for kind, ids in manifest.defects.items() for m in ids}
    found = {(f["MaHoSo"], f["kind"]) for f in results["findings"]}
    assert planted, "the generator planted defects"
    assert found == planted, {"missed": sorted(planted - found)[:5], "extra": sorted(found - planted)[:5]}
    assert code == 1 and results["verdict"] == "not ready"
    assert results["records"] == {"before": manifest.before, "after": manifest.after, "outside_province": 0}


def test_a_clean_conversion_is_ready_with_its_reconciliation(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ConversionPairs(seed=4).write(2_000, tmp_path)
    code, results = _check(tmp_path)
    assert code == 0 and results["verdict"] == "ready" and results["findings"] == []
    assert results["digitisation"]["share"] == 1.0 and results["digitisation"]["due"] > 0
    statuses = results["reconciliation"]["by_status"]
    assert sum(s["before"] for s in statuses) == sum(s["after"] for s in statuses) == 2_000
    assert all(u["before"] == u["converted"] for u in results["reconciliation"]["by_old_unit"])
    junit = (tmp_path / "out" / "junit.xml").read_text(encoding="utf-8")
    assert 'failures="0"' in junit and "conversion digitisation" in junit
    assert "ready" in capsys.readouterr().out


def test_csv_input_bad_records_and_the_province_filter(tmp_path: Path) -> None:
    ConversionPairs(seed=5, province="79").write(200, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "before.jsonl").read_text(encoding="utf-8").splitlines()]
    with (tmp_path / "before.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "KetQua": json.dumps(row["KetQua"], ensure_ascii=False)})
    with (tmp_path / "after.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    code = main(["convert", "check", "--before", str(tmp_path / "before.csv"), "--after",
                 str(tmp_path / "after.jsonl"), "--out", str(tmp_path / "out"), "--province", "79"])
    results = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert code == 1 and results["finding_counts"] == {"invalid-record": 1}
    assert results["findings"][0]["message"].startswith("after.jsonl:201: not a JSON object (")
    # none of HCMC's dossiers is judged for Hà Nội: no vacuous "ready", the run could not judge anything
    assert main(["convert", "check", "--before", str(tmp_path / "before.csv"), "--after",
                 str(tmp_path / "after.jsonl"), "--out", str(tmp_path / "o2"), "--province", "01"]) == 2


def test_generate_kind_conversion_writes_the_pair_and_its_manifest(tmp_path: Path) -> None:
    out = tmp_path / "pair"
    assert main(["data", "generate", "--kind", "conversion", "--count", "50", "--defect-rate", "0.2",
                 "--seed", "1", "--out", str(out), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["before_records"] == 50 and sum(manifest["defect_counts"].values()) > 0
    assert main(["data", "generate", "--kind", "conversion", "--count", "5", "--format", "csv", "--out",
                 str(tmp_path / "x")]) == 2


def test_a_record_missing_a_field_is_named_once_and_not_also_dropped(tmp_path: Path) -> None:
    ConversionPairs(seed=6).write(20, tmp_path)
    lines = (tmp_path / "after.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    del first["MaXa"]
    lines[0] = json.dumps(first, ensure_ascii=False)
    (tmp_path / "after.jsonl").write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")  # with a BOM
    code, results = _check(tmp_path)
    assert code == 1 and results["finding_counts"] == {"invalid-record": 1}, results["finding_counts"]
    assert results["findings"][0]["message"] == "after.jsonl:1: converted record: MaXa: \"MaXa\" is a required property"


def test_workers_find_the_same_findings_in_the_same_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--workers 2 splits both passes (the files at line starts, the buckets in ranges): same findings, same order,
    same counts and reconciliation; line numbers of bad records stay right in the second share."""
    from haicap.conversion import check as engine

    monkeypatch.setattr(engine, "BLOCK", 64 * 1024)  # shares and several blocks per share on a small file
    monkeypatch.setattr(engine, "BYTES_PER_BUCKET", 128 * 1024)
    ConversionPairs(seed=8, defect_rate=0.05).write(3_000, tmp_path)
    with (tmp_path / "after.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("\r\n{not json\r\n")
    reports = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        out.mkdir()
        reports.append(engine.check_conversion(tmp_path / "before.jsonl", tmp_path / "after.jsonl", out,
                                               say=lambda _: None, workers=workers))
    one, two = reports
    assert (tmp_path / "w1" / "findings.jsonl").read_bytes() == (tmp_path / "w2" / "findings.jsonl").read_bytes()
    assert one.listed == two.listed and one.by_kind == two.by_kind and one.findings > 100
    assert (one.by_old_unit, one.by_new_unit, one.status_after) == (two.by_old_unit, two.by_new_unit,
                                                                    two.status_after)
    assert (one.before_records, one.after_records, one.digitised) == (two.before_records, two.after_records,
                                                                      two.digitised)
    lines = (tmp_path / "after.jsonl").read_bytes().count(b"\n")
    assert any(f.startswith(b'{"MaHoSo":"(after.jsonl:%d)"' % lines) for f in one.listed)


def test_the_conversion_checks_judge_nothing_vacuously_and_quote_the_findings(tmp_path: Path) -> None:
    """CONV-…: an export with no record of the province is 'could not run'; a finding family fails naming the
    dossier, the kind and what is wrong; a clean one passes with the count judged."""
    from haicap.conformance.checks.conversion import family_verdict, judge_export
    from haicap.conformance.registry import CheckError, CheckFailure

    (tmp_path / "before.jsonl").write_bytes(b"")
    (tmp_path / "after.jsonl").write_bytes(b"")
    empty = judge_export(tmp_path / "before.jsonl", tmp_path / "after.jsonl", "01", source="the files",
                         reproduce="x")
    with pytest.raises(CheckError, match="observed 0 of 1 old records of province 01"):
        family_verdict(empty, "completeness", "all there", "01")
    manifest = ConversionPairs(seed=9, province="01").pairs_with(300, ("dropped", "split-undecided"))
    folder = tmp_path / "pair"
    folder.mkdir()
    with (folder / "before.jsonl").open("wb") as old, (folder / "after.jsonl").open("wb") as new:
        for before, written in manifest:
            old.write(json.dumps(before, ensure_ascii=False).encode() + b"\n")
            new.write(b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in written))
    verdict = judge_export(folder / "before.jsonl", folder / "after.jsonl", "01", source="the files", reproduce="x")
    with pytest.raises(CheckFailure, match=r"1 completeness finding\(s\) in the files \(dropped 1\): \S+ dropped: "):
        family_verdict(verdict, "completeness", "all there", "01")
    with pytest.raises(CheckFailure, match=r"split-undecided 1\): \S+ split-undecided: old ward \d{5} was split"):
        family_verdict(verdict, "accuracy", "mapped", "01")
    assert family_verdict(verdict, "continuity", "kept", "01") == "300 old records of province 01 judged in the " \
                                                                   "files: kept"
    other = judge_export(folder / "before.jsonl", folder / "after.jsonl", "79", source="the files", reproduce="x")
    with pytest.raises(CheckError, match=r"observed 0 of 1 .*\(300 records, 300 of other provinces\)"):
        family_verdict(other, "consistency", "named", "79")


def test_a_profile_names_the_export_files_or_the_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          profile_file: Callable[..., Path]) -> None:
    """profile ``conversion``: before/after files relative to the profile (they must exist), or none for the export
    endpoint (it needs the officer credential); without the section the conversion checks are not run."""
    from haicap.errors import HaicapError
    from haicap.target import _capabilities, back_office_settings, conversion_files, load_profile

    def load(extra: str) -> tuple[tuple[str, str] | None, frozenset[str]]:
        document = load_profile(profile_file(extra)).document
        return conversion_files(document), _capabilities(document.data, back_office_settings(document.data))

    files, capabilities = load("")
    assert files is None and "conversion" not in capabilities
    (tmp_path / "export").mkdir()
    for side in ("before", "after"):
        (tmp_path / "export" / f"{side}.jsonl").write_text("", encoding="utf-8")
    files, capabilities = load("conversion:\n  before: export/before.jsonl\n  after: export/after.jsonl\n")
    assert files == (str(tmp_path / "export" / "before.jsonl"), str(tmp_path / "export" / "after.jsonl"))
    assert "conversion" in capabilities
    with pytest.raises(HaicapError, match=r"profile.yaml:\d+: conversion.after: .*after.csv: no such file"):
        load("conversion:\n  before: export/before.jsonl\n  after: export/after.csv\n")
    with pytest.raises(HaicapError, match="officer_token_env, which is not set"):
        load("conversion: {}\n")
    with pytest.raises(HaicapError, match="after"):
        load("conversion:\n  before: export/before.jsonl\n")


@pytest.mark.parametrize(("address", "named"), [
    ("Số 1, Phường Ba Đình, Thành phố Hà Nội", True),
    ("so 1 phuong ba dinh ha noi", True),
    ("Số 1, P. Ba Đình, TP. Hà Nội", True),            # the type word abbreviated, as addresses write it
    ("Số 1, Phường Điện Biên, Quận Ba Đình", False),    # the old district's name, not the new ward
    ("Số 1, Phường Ba Đìnhh", False),                   # whole words only
    ("Số 1, Phường Ngọc Hà, Hà Nội", False),
])
def test_an_address_names_its_commune_written_out_or_abbreviated(address: str, named: bool) -> None:
    from haicap.conversion.rules import names_commune, normalise_name

    assert names_commune(address, normalise_name("Phường Ba Đình")) is named


def test_an_export_of_invalid_records_judges_no_mapping_date_or_address(tmp_path: Path) -> None:
    """A stand-in answering {} for both sides: completeness fails (invalid records), the other families reach no
    verdict (no record converted to judge) instead of passing on nothing."""
    from haicap.conformance.checks.conversion import family_verdict, judge_export
    from haicap.conformance.registry import CheckError, CheckFailure

    for side in ("before", "after"):
        (tmp_path / f"{side}.jsonl").write_bytes(b"{}\n")
    verdict = judge_export(tmp_path / "before.jsonl", tmp_path / "after.jsonl", "01", source="the files",
                           reproduce="x")
    with pytest.raises(CheckFailure, match="completeness"):
        family_verdict(verdict, "completeness", "all there", "01")
    for family in ("accuracy", "continuity", "consistency"):
        with pytest.raises(CheckError, match="observed 0 of 1 old records of province 01 converted"):
            family_verdict(verdict, family, "x", "01")


def test_the_typed_lane_accepts_nothing_the_contract_rejects() -> None:
    """The fast lane (msgspec types built from conversion.schema.json) refuses every record jsonschema refuses, so
    a bad record always reaches the exact lane that names it; valid records decode the same in both."""
    from haicap.contract_registry import default_registry
    from haicap.conversion.typed_records import record_types, to_plain

    manifest = ConversionPairs(seed=11).pairs_with(40, ())
    validator = default_registry().validator("conversion.schema.json#/$defs/ConvertedRecord").compiled
    typed = record_types("ConvertedRecord")
    good = next(r for _, written in manifest for r in written)
    broken = [{**good, "NgayHenTra": good["NgayHenTra"] + "\n"}, {**good, "NgayHenTra": "2025010100000"},
              {**good, "MaXa": 5}, {**good, "MaHoSo": ""}, {**good, "KetQua": None},
              {**good, "KetQua": [{"TenGiayTo": "", "DuocSoHoa": True, "DuocTaiSuDung": True}]},
              {**good, "KetQua": [{"TenGiayTo": "x", "DuocSoHoa": 1, "DuocTaiSuDung": True}]},
              {**good, "QuyetDinhTach": {"MaXa": "1234", "CanCu": "abc", "NguoiQuyetDinh": "ab",
                                         "NgayQuyetDinh": "20250101000000"}},
              {k: v for k, v in good.items() if k != "DiaChi"}, {**good, "NgayTiepNhan": "２０２５０１０１０００００"}]
    for record in broken:
        assert not validator.is_valid(record), record
        assert typed.decode(json.dumps(record, ensure_ascii=False).encode() + b"\n", 1) is None, record
    line = json.dumps(good, ensure_ascii=False).encode() + b"\n"
    decoded = typed.decode(line * 3, 3)
    assert decoded is not None and to_plain(decoded[0]) == {k: v for k, v in good.items()}
    two = line.rstrip() + b" " + line
    assert typed.decode(two, two.count(b"\n")) is None  # two values on one line are not two records


def _small_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many buckets on a small file, as a real export of more than 4 MB has: a bucketing error shows."""
    from haicap.conversion import check as engine

    monkeypatch.setattr(engine, "BYTES_PER_BUCKET", 16 * 1024)


def test_a_mahoso_escaped_or_after_a_nested_mahoso_is_joined_to_its_old_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Independent exporters write ``\\/`` and ``\\u00XX`` escapes, and extra objects carrying their own MaHoSo:
    the bucket key is the record's top-level MaHoSo, decoded (was: 3,000 dropped + 3,000 invented)."""
    _small_buckets(monkeypatch)
    ConversionPairs(seed=11).write(600, tmp_path)
    lines = (tmp_path / "after.jsonl").read_text(encoding="utf-8").splitlines()
    rewritten = []
    for n, line in enumerate(lines):
        record = json.loads(line)
        if n % 2:
            text = json.dumps(record, ensure_ascii=True).replace(".", "\\u002e", 1)  # in MaHoSo: the first "."
        else:
            text = json.dumps({"Nguon": {"MaHoSo": f"REF-{n}"}, **record}, ensure_ascii=False)
        rewritten.append(text.replace("/", "\\/"))
    (tmp_path / "after.jsonl").write_text("\n".join(rewritten) + "\n", encoding="utf-8")
    code, results = _check(tmp_path)
    assert (code, results["finding_counts"]) == (0, {})


def _excel_csv(path: Path, rows: list[dict], delimiter: str) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))[::-1]  # another column order
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([json.dumps(row[c], ensure_ascii=False) if isinstance(row.get(c), (dict, list))
                             else row.get(c, "") for c in columns])
        writer.writerow([""] * len(columns))  # the empty rows Excel leaves below the data


def test_excel_csv_with_semicolons_and_empty_rows_is_read_bad_rows_named(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Excel in a locale with a decimal comma separates with ';' (was: a TypeError traceback), leaves ',,,' rows
    (was: an invalid record); a cell over two lines keeps the following line numbers right; a row with more
    cells than the header is an invalid record naming that; a header without MaHoSo, text that is not UTF-8 or a
    directory are clear errors (exit 2)."""
    _small_buckets(monkeypatch)
    ConversionPairs(seed=12).write(300, tmp_path)
    for side in ("before", "after"):
        rows = [json.loads(line) for line in (tmp_path / f"{side}.jsonl").read_text(encoding="utf-8").splitlines()]
        rows[0]["DiaChi"] = rows[0]["DiaChi"].replace(", ", ",\n", 1) if side == "before" else rows[0]["DiaChi"]
        _excel_csv(tmp_path / f"{side}.csv", rows, ";")
    args = ["convert", "check", "--before", str(tmp_path / "before.csv"), "--after", str(tmp_path / "after.csv")]
    assert main([*args, "--out", str(tmp_path / "ok")]) == 0
    with (tmp_path / "before.csv").open("a", encoding="utf-8", newline="") as fh:
        fh.write("a;b;" * 12 + "\r\n")
    assert main([*args, "--out", str(tmp_path / "bad")]) == 1
    results = json.loads((tmp_path / "bad" / "results.json").read_text(encoding="utf-8"))
    assert results["finding_counts"] == {"invalid-record": 1}
    assert results["findings"][0]["message"].startswith("before.csv:304: old record: CSV row of 25 cells, the header ")
    (tmp_path / "x.csv").write_bytes("MaHoSo,DiaChi\r\nx,Phường\r\n".encode("utf-16"))
    (tmp_path / "y.csv").write_text("foo,bar\r\n1,2\r\n", encoding="utf-8")
    for bad, message in (("x.csv", "not UTF-8 text"), ("y.csv", "y.csv:1: not a CSV header"), (".", "is a directory")):
        with pytest.raises(HaicapError, match=message):
            check_conversion(tmp_path / bad, tmp_path / "after.csv", tmp_path, say=lambda _: None)


def test_a_mahoso_twice_in_the_old_data_is_one_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A duplicate in the export before the conversion cannot be accounted for (was: ready)."""
    _small_buckets(monkeypatch)
    ConversionPairs(seed=13).write(400, tmp_path)
    lines = (tmp_path / "before.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "before.jsonl").write_text("\n".join([*lines, lines[7]]) + "\n", encoding="utf-8")
    code, results = _check(tmp_path)
    assert code == 1 and results["finding_counts"] == {"duplicated-before": 1}
    assert results["findings"][0]["MaHoSo"] == json.loads(lines[7])["MaHoSo"]


@pytest.mark.parametrize(("address", "name"), [
    ("Số 3, Xã D’Ran, Tỉnh Lâm Đồng", "Xã D'Ran"),          # the official table's apostrophe (U+2019)
    ("Số 3, Phường\u00a0B'Lao, Lâm Đồng", "Phường B’Lao"),  # a no-break space, as Excel and Word paste it
    ("P. Văn Miếu – Quốc Tử Giám", "Phường Văn Miếu - Quốc Tử Giám"),  # an en dash
])
def test_an_address_names_its_commune_whatever_its_punctuation(address: str, name: str) -> None:
    from haicap.conversion.rules import names_commune, normalise_name

    assert names_commune(address, normalise_name(name))


def test_a_dossier_of_an_island_district_without_wards_goes_to_its_special_zone(tmp_path: Path) -> None:
    """Côn Đảo, Lý Sơn, Bạch Long Vĩ … had no ward: the old record's MaXa is empty or the district's code, and
    the dossier goes whole to the đặc khu (was: foreign-code-system); another commune is a wrong mapping."""
    from haicap.data_generators.agencies import province_agency_code

    old = {"MaHoSo": "CD-1", "MaTTHC": "1.000001", "TrangThaiHoSo": "2", "NgayTiepNhan": "20250401080000",
           "NgayHenTra": "20250501170000", "MaXa": "", "MaHuyen": "755", "MaTinh": "77",
           "MaCoQuan": "755.00.99.H01", "CapCoQuan": "huyen", "DiaChi": "Khu 1, Huyện Côn Đảo, Bà Rịa - Vũng Tàu"}
    new = {**{k: old[k] for k in ("MaHoSo", "MaTTHC", "TrangThaiHoSo", "NgayTiepNhan", "NgayHenTra")},
           "MaXa": "26732", "MaTinh": "79", "MaCoQuan": province_agency_code("79"),
           "DiaChi": "Khu 1, Đặc khu Côn Đảo, TP. Hồ Chí Minh"}
    before = [old, {**old, "MaHoSo": "CD-2", "MaXa": "755"}, {**old, "MaHoSo": "CD-3"}]
    after = [new, {**new, "MaHoSo": "CD-2"}, {**new, "MaHoSo": "CD-3", "MaXa": "26506",
                                                "DiaChi": "Phường Vũng Tàu"}]
    for name, records in (("before", before), ("after", after)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                                encoding="utf-8")
    code, results = _check(tmp_path)
    assert code == 1
    assert [(f["MaHoSo"], f["kind"]) for f in results["findings"]] == [("CD-3", "wrong-mapping")], results["findings"]


def test_the_provinces_own_agency_code_is_a_current_agency(tmp_path: Path) -> None:
    """A real province's agency code (the profile's agency_code, --agency-code) need not be haicap's numbering:
    converted dossiers naming it or its communes' codes under it are not 'agency-not-current' (was: every one)."""
    from haicap.conformance.checks.conversion import family_verdict, judge_export
    from haicap.data_generators.agencies import commune_agency_code, province_agency_code

    ConversionPairs(seed=14, province="01").write(200, tmp_path)
    mine, theirs = "000.00.00.H99", province_agency_code("01")
    lines = []
    for line in (tmp_path / "after.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record["MaCoQuan"] = mine if record["MaCoQuan"] == theirs else commune_agency_code(record["MaXa"], mine)
        lines.append(json.dumps(record, ensure_ascii=False))
    (tmp_path / "after.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, results = _check(tmp_path, "--province", "01")
    assert code == 1 and set(results["finding_counts"]) == {"agency-not-current"}
    code, results = _check(tmp_path, "--province", "01", "--agency-code", mine)
    assert (code, results["finding_counts"]) == (0, {})
    verdict = judge_export(tmp_path / "before.jsonl", tmp_path / "after.jsonl", "01", source="the files",
                           reproduce="x", agency=mine)
    assert family_verdict(verdict, "continuity", "kept", "01").startswith("200 old records")
    assert main(["convert", "check", "--before", str(tmp_path / "before.jsonl"), "--after",
                 str(tmp_path / "after.jsonl"), "--out", str(tmp_path / "o"), "--agency-code", mine]) == 2
