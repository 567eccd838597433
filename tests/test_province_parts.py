"""Unit tests of the reference province's parts: store, units, sync items, catalogue, contract."""

from __future__ import annotations

import concurrent.futures
import sqlite3
from pathlib import Path

import pytest
import yaml

from haicap.contract_registry import default_registry
from haicap.data_generators.units import admin_units
from haicap.sandbox.province import dossiers as d
from haicap.sandbox.province.catalogue import Catalogue
from haicap.sandbox.province.outbox import OutboxPolicy, outbox_counts
from haicap.sandbox.province.problems import Problem
from haicap.sandbox.province.store import Store
from haicap.sandbox.province.sync_items import DOSSIER_ITEM_REF, PROGRESS_ITEM_REF, SyncItemBuilder
from haicap.sandbox.province.units import ProvinceUnits, commune_agency_code

REGISTRY = default_registry()


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "p.sqlite3").start()
    yield s
    s.close()


def _doc(ma_xa: str = "00226", fee: int = 0) -> dict:
    return {
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "MaXa": ma_xa,
        "MaCoQuan": commune_agency_code(ma_xa, "000.00.00.H26"),
        "ChuHoSo": "Nguyễn Văn A",
        "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "001203012345"}],
        "TrichYeuHoSo": "x",
        "KenhThucHien": "2",
        "LoaiDoiTuong": "1",
        "TrangThaiHoSo": "1",
        "NgayNopHoSo": d.thoi_gian(),
        "NgayTiepNhan": d.thoi_gian(),
        "NgayHenTra": d.thoi_gian(),
        "NoiNopHoSo": "x",
        "TaiLieuNop": [],
        "DanhSachLePhi": [],
        "PhiPhaiNop": fee,
        "DaThanhToan": False,
        "SoTienDaThanhToan": 0,
        "DuocThanhToanTrucTuyen": "2",
        "NguonHoSo": "province",
        "LichSu": [d.history_entry("1", NguoiXuLy="Nguyễn Văn A")],
    }


def _policy(*faults: str) -> OutboxPolicy:
    return OutboxPolicy.for_faults(SyncItemBuilder(REGISTRY, faults), faults)


def test_store_resolves_only_after_commit_and_isolates_failing_ops(store: Store) -> None:
    store.write_sync(lambda c: c.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
    futures = [
        store.submit(lambda c, i=i: c.execute("INSERT INTO t VALUES (?)", (i % 50,)).rowcount) for i in range(100)
    ]
    ok = [f for f in futures if f.exception(timeout=10) is None]
    failed = [f for f in futures if f.exception(timeout=10) is not None]
    assert len(ok) == 50 and len(failed) == 50
    assert all(isinstance(f.exception(), sqlite3.IntegrityError) for f in failed)
    # what a resolved future promised is visible to an independent connection: it is committed
    other = sqlite3.connect(store.path)
    assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 50


def test_sequences_are_unique_under_concurrency(store: Store) -> None:
    policy = _policy()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        docs = list(
            pool.map(
                lambda _: store.write_sync(lambda c: d.op_create(c, policy, _doc(), "002.26.00.H26", "250701")),
                range(300),
            )
        )
    codes = [doc["MaHoSo"] for doc in docs]
    assert len(set(codes)) == 300
    assert sorted(codes)[0] == "002.26.00.H26-250701-0001" and sorted(codes)[-1] == "002.26.00.H26-250701-0300"
    assert all(REGISTRY.validator("common.schema.json#/$defs/MaHoSo").is_valid(c) for c in codes)
    # dossier row and outbox rows were written together: one create + one progress row per dossier
    assert outbox_counts(store)["pending"] == 600


def test_transition_table_refuses_invalid_moves(store: Store) -> None:
    policy = _policy()
    doc = store.write_sync(lambda c: d.op_create(c, policy, _doc(), "002.26.00.H26", "250701"))
    m = doc["MaHoSo"]
    with pytest.raises(Problem) as refused:
        store.write_sync(lambda c: d.op_officer_action(c, policy, m, {"action": "return-result"}))
    assert refused.value.status == 409
    for action, state in [("receive", "2"), ("process", "4"), ("complete", "9"), ("return-result", "10")]:
        doc = store.write_sync(lambda c, a=action: d.op_officer_action(c, policy, m, {"action": a}))
        assert doc["TrangThaiHoSo"] == state
    assert doc["NgayTra"] and [e["TrangThaiHoSo"] for e in doc["LichSu"]] == ["1", "2", "4", "9", "10"]
    lifted = store.write_sync(lambda c: d.op_create(c, policy, _doc(), "002.26.00.H26", "250701"))
    jumped = store.write_sync(
        lambda c: d.op_officer_action(
            c, policy, lifted["MaHoSo"], {"action": "return-result"}, enforce_transitions=False
        )
    )
    assert jumped["TrangThaiHoSo"] == "10"


def test_units_declare_current_communes_with_wellformed_agency_codes() -> None:
    units = ProvinceUnits("01", "000.00.00.H26")
    declared = units.declaration()
    assert REGISTRY.validator("dossier.schema.json#/$defs/UnitsDeclaration").is_valid(declared)
    official = {c.code for c in admin_units().communes("01")}
    assert {u["MaXa"] for u in declared["DonVi"]} == official
    agency = REGISTRY.validator("common.schema.json#/$defs/MaCoQuan")
    codes = [u["MaCoQuan"] for u in declared["DonVi"]]
    assert all(agency.is_valid(c) for c in codes) and len(set(codes)) == len(codes)
    legacy_only = next(w.code for w in admin_units().legacy_wards("01") if w.code not in official)
    with pytest.raises(Problem) as refused:
        units.check_commune(legacy_only)
    assert refused.value.status == 422 and refused.value.errors[0]["field"] == "MaXa"
    with pytest.raises(Problem):
        units.check_commune(admin_units().communes("79")[0].code)  # another province's commune


def test_sync_items_follow_the_contract() -> None:
    doc = {**_doc(), "MaHoSo": "002.26.00.H26-250701-0001", "SoTienDaThanhToan": 5}
    builder = SyncItemBuilder(REGISTRY)
    item = builder.dossier_item(doc)
    assert REGISTRY.validator(DOSSIER_ITEM_REF).violations(item) == []
    assert set(item) <= set(REGISTRY.property_names(DOSSIER_ITEM_REF))  # SoTienDaThanhToan is not a sync field
    progress = builder.progress_item(doc, doc["LichSu"][0])
    assert REGISTRY.validator(PROGRESS_ITEM_REF).violations(progress) == []
    broken = SyncItemBuilder(REGISTRY, {"sync-missing-fields"}).dossier_item(doc)
    assert {v.field for v in REGISTRY.validator(DOSSIER_ITEM_REF).violations(broken)} >= {"MaTTHC", "DinhDanhCHS"}


def test_catalogue_is_the_contract_data() -> None:
    catalogue = Catalogue.load(REGISTRY)
    data = yaml.safe_load((REGISTRY.root / "procedures.yaml").read_text(encoding="utf-8"))
    assert [p["MaTTHC"] for p in catalogue.all()] == [p["MaTTHC"] for p in data["procedures"]]
    assert catalogue.get("1.001193")["PhiPhaiNop"] == 0
    assert catalogue.get("1.001193.000.00.00.H26")["TenTTHC"] == "Đăng ký khai sinh"
    assert any(p["PhiPhaiNop"] > 0 for p in catalogue.all()) and any(p["LoaiDoiTuong"] == "2" for p in catalogue.all())


def test_contract_links_and_security() -> None:
    spec = REGISTRY.openapi("province-dossier")
    links = spec["paths"]["/api/v1/dossiers"]["post"]["responses"]["201"]["links"]
    operation_ids = {
        op["operationId"]
        for path in spec["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert {link["operationId"] for link in links.values()} <= operation_ids
    assert set(spec["components"]["securitySchemes"]) == {"citizen", "officer", "forward"}


def test_a_cancelled_caller_does_not_stop_the_writer(store: Store) -> None:
    import threading

    gate = threading.Event()
    blocker = store.submit(lambda c: gate.wait(5))
    for _ in range(5000):  # until the writer is inside the blocker's batch
        if blocker.running():
            break
        gate.wait(0.001)
    cancelled = store.submit(lambda c: c.execute("CREATE TABLE never (x)"))
    assert cancelled.cancel()  # the caller went away before its turn (e.g. a client disconnect)
    gate.set()
    assert blocker.result(5) is True
    assert store.write_sync(lambda c: c.execute("SELECT 1").fetchone()[0]) == 1
    assert store.read("SELECT name FROM sqlite_master WHERE name = 'never'") == []


def test_the_lazy_client_is_made_on_first_use_once_and_closed_on_aclose() -> None:
    import asyncio

    from haicap.sandbox.province.lazy_http import LazyAsyncClient

    async def run() -> None:
        lazy = LazyAsyncClient(timeout=3.0)
        assert not lazy.made
        await lazy.aclose()  # nothing made: nothing to close
        first = lazy.client
        assert lazy.client is first and first.timeout.connect == 3.0 and not first.is_closed
        await lazy.aclose()
        assert first.is_closed and not lazy.made
        assert lazy.client is not first and not lazy.client.is_closed  # a later use makes a new one
        await lazy.aclose()

    asyncio.run(run())

