"""The 28-June national readiness checklist: its columns, their counts out of 34 and haicap's criterion of each.

The Government Office's table of 28 June 2025 counted, of the 34 provinces after the merger, how many had each
item ready (34 / 32 / 33 / 8 / 32 / 21 / 21 / 33). :data:`CHECKLIST_28_JUNE` is that table once: the column, its
count, the haicap criterion that judges it, and the sandbox fault ``haicap scoreboard --demo`` switches on in the
provinces that were not ready, so the demo board reproduces the counts. :func:`demo_plan` derives which sandbox
province gets which fault from it (nothing is typed per province), and :func:`quick_checks` the reduced check set
of ``--demo --quick``: per column the checks that claim its fault (``detects=``, proven by
tests/test_detection_power.py), or every check of a column that has no fault.

A column whose criterion is not built yet is *pending* (:attr:`ChecklistColumn.pending`): the demo certifies
nothing for it, shows it "not tested" and says why; whoever merges the criterion names its fault here.

Each fault below is confined to its column: every check that claims it belongs to that column's criterion
(tests/test_scoreboard_demo.py), and a full certify with all of them switched on fails no check of another
criterion.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHECKLIST_28_JUNE", "PROVINCES", "ChecklistColumn", "demo_plan", "quick_checks"]

#: How many provinces the checklist counts (after the 1 July 2025 merger).
PROVINCES = 34


@dataclass(frozen=True)
class ChecklistColumn:
    """One column of the 28-June table."""

    criterion: str
    label_vi: str
    label_en: str
    #: provinces ready on 28 June, out of :data:`PROVINCES`
    count: int
    #: the sandbox fault that makes a demo province not ready in this column only (None: every province was
    #: ready, or the column is pending)
    fault: str | None
    #: why the column has no fault yet (its criterion is not in this build); None when it is judged
    pending: str | None = None


CHECKLIST_28_JUNE: tuple[ChecklistColumn, ...] = (
    ChecklistColumn("units", "Đơn vị đã khai báo", "Units declared", 34, None),
    ChecklistColumn("portal", "Đóng giao diện Cổng dịch vụ công tỉnh", "Provincial portal interface closed", 32,
                    "old-portal-local-login"),
    ChecklistColumn("sso", "Đã kiểm thử đăng nhập một lần (SSO)", "Single sign-on tested", 33, "skips-state-check"),
    ChecklistColumn("submission", "Đã kiểm thử nộp hồ sơ trực tuyến với tất cả các xã",
                    "Online submission tested with every commune", 8, "reads-any-dossier"),
    ChecklistColumn("sync", "Đồng bộ đầy đủ", "Sync fully synchronised", 32, "hen-tra-before-tiep-nhan"),
    ChecklistColumn("payment", "Đã kiểm thử thanh toán trực tuyến", "Online payment tested", 21,
                    "ignores-callback-checksum"),
    ChecklistColumn("forwarding", "Tiếp nhận, xử lý hồ sơ được chuyển", "Forwarded dossiers received and processed",
                    21, "unauthenticated-forwarding"),
    ChecklistColumn("document_axis", "Mã định danh cơ quan trên NPSP và trục liên thông văn bản",
                    "Agency codes published on NPSP and the document interconnection axis", 33,
                    "stale-agency-directory"),
)


def demo_plan(columns: tuple[ChecklistColumn, ...] = CHECKLIST_28_JUNE,
              provinces: list[str] | None = None) -> dict[str, dict[str, str | None]]:
    """province code → {criterion: fault (None for a pending column)} of the columns it is not ready in.

    Column by column, the next ``PROVINCES - count`` provinces (in code order, wrapping round) get the column's
    fault, so the faults spread over the provinces and each column's total is its 28-June count.
    """
    if provinces is None:
        from haicap.data_generators.units import admin_units

        provinces = [p.code for p in admin_units().provinces()]
    plan: dict[str, dict[str, str | None]] = {code: {} for code in provinces}
    cursor = 0
    for column in columns:
        failing = len(provinces) - column.count
        if failing > 0 and column.fault is None and column.pending is None:
            raise ValueError(f"checklist column {column.criterion}: {failing} province(s) not ready but no fault")
        for i in range(failing):
            plan[provinces[(cursor + i) % len(provinces)]][column.criterion] = column.fault
        cursor += failing
    return plan


def quick_checks(columns: tuple[ChecklistColumn, ...] = CHECKLIST_28_JUNE) -> dict[str, list[str]]:
    """criterion → the check ids of the quick demo set: the checks of that criterion claiming the column's fault,
    or all of the criterion's checks when the column has no fault (pending columns: none)."""
    from haicap.conformance.registry import all_checks

    specs = all_checks()
    out: dict[str, list[str]] = {}
    for column in columns:
        mine = [s for s in specs if s.criterion == column.criterion and column.pending is None]
        if column.fault is not None:
            mine = [s for s in mine if column.fault in s.detects]
        out[column.criterion] = sorted(s.id for s in mine)
    return out
