"""``haicap scoreboard --demo --out board/``: the 28-June table reproduced by 34 certified sandbox provinces.

Each of the 34 current provinces is played by haicap's reference province (``haicap certify --province CODE``)
with the faults :func:`haicap.checklist.demo_plan` gives it — derived from the one checklist table
(:data:`haicap.checklist.CHECKLIST_28_JUNE`), so a column's total is its 28-June count because that many provinces
carry its fault, not because a number was typed. The 34 certifications run in parallel processes (one per core
by default, ``--workers N``), each printing a progress line when it ends; their signed bundles then make the
board exactly as ``haicap scoreboard DIR`` does (rows marked "embedded sandbox, faults: …").

A full demo certifies every check: about 34 × 50 s of CPU. ``--quick`` certifies per column only the checks that
claim its fault (the detection-power test proves they fail on it and pass without it), or all checks of a column
that has no fault; such a cell reads "ready (quick set)" and the board's title says so. A column whose criterion
is not in this haicap (:attr:`~haicap.checklist.ChecklistColumn.pending`) is certified by nothing, shows "not
tested" and its head says why.

Exit 0 when every judged column's total equals its 28-June count, 1 naming the columns that differ, 2 when a
certification could not start.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import shutil
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError

__all__ = ["certify_province", "demo_only", "run_demo"]


def demo_only(quick: bool) -> list[str]:
    """The ``--only`` selectors of a demo certification: none (every check) or the quick set's check ids."""
    if not quick:
        return []
    from haicap.checklist import quick_checks

    return sorted({check for checks in quick_checks().values() for check in checks})


def certify_province(code: str, faults: list[str], only: list[str], runs: Path) -> dict[str, Any]:
    """One province's ``haicap certify`` in this process, its output in ``runs/CODE.log`` (a worker's task)."""
    from haicap.cli import main

    out = runs / code
    argv = ["certify", "--province", code, "--out", str(out), *(f"--fault={f}" for f in faults),
            *(f"--only={c}" for c in only)]
    t0 = time.monotonic()
    with (runs / f"{code}.log").open("w", encoding="utf-8") as log, redirect_stdout(log), redirect_stderr(log):
        exit_code = main(argv)
    results_path = out / "results.json"
    verdicts = json.loads(results_path.read_text(encoding="utf-8")).get("verdicts", {}) \
        if results_path.is_file() else {}
    return {"province": code, "exit_code": exit_code, "seconds": time.monotonic() - t0, "verdicts": verdicts,
            "bundle": str(out / "bundle.zip") if (out / "bundle.zip").is_file() else None}


def _progress(done: int, total: int, result: dict[str, Any], faults: list[str]) -> str:
    from haicap.reports.scoreboard import _province_name

    broken = [c for c, v in result["verdicts"].items() if v == "not ready"]
    what = f"not ready: {', '.join(broken)}" if broken else "no column failed"
    fault_text = ", ".join(faults) or "no fault"
    return (f"[{done:2d}/{total}] {result['province']} {_province_name(result['province'])} — {what} "
            f"(faults: {fault_text}; exit {result['exit_code']}, {result['seconds']:.0f} s)")


def _run_all(plan: dict[str, list[str]], only: list[str], runs: Path, workers: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker: no forked threads or sockets
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(certify_province, code, faults, only, runs): code for code, faults in plan.items()}
        for future in cf.as_completed(futures):
            result = future.result()
            results.append(result)
            print(_progress(len(results), len(plan), result, plan[result["province"]]), flush=True)
    return sorted(results, key=lambda r: r["province"])


def _view(quick: bool, only: list[str]) -> Any:
    from haicap.checklist import CHECKLIST_28_JUNE, PROVINCES
    from haicap.reports.scoreboard import View

    columns = {c.criterion: f"{c.label_vi} — {c.label_en}" for c in CHECKLIST_28_JUNE}
    pending = {c.criterion: c.pending for c in CHECKLIST_28_JUNE if c.pending}
    checks = (f"quick check set: {len(only)} checks per province ({', '.join(only)}), per column the checks that "
              "claim its fault; 'ready (quick set)' means each of them passed, not the whole criterion"
              if quick else "full check set: every check of every criterion")
    intro = (
        "Bản trình diễn: 34 tỉnh mô phỏng (tỉnh tham chiếu của haicap với lỗi được bật) tái hiện bảng kiểm ngày 28/6. "
        "Demo: 34 sandbox provinces (haicap's reference province with faults switched on) reproduce the 28-June "
        "checklist; which province carries which fault is derived from haicap/checklist.py.",
        checks + ".",
        *(f"Column {c} is pending: {why}; it reads 'not tested'." for c, why in pending.items()),
    )
    title = ("Demo — 34 sandbox provinces, " + ("quick check set" if quick else "full check set")
             + " (bản trình diễn, 34 tỉnh mô phỏng)")
    return View(columns=columns, title=title, intro=intro, expected={c.criterion: c.count for c in CHECKLIST_28_JUNE
                                                                     if not c.pending},
                pending=pending, of=PROVINCES)


def run_demo(out: Path, *, quick: bool = False, workers: int = 0) -> int:
    """Certify the 34 demo provinces into ``out/runs``, render the board into ``out``; the exit code above."""
    from haicap.checklist import demo_plan
    from haicap.reports.scoreboard import write_board

    plan = {code: sorted(f for f in faults.values() if f) for code, faults in demo_plan().items()}
    only = demo_only(quick)
    workers = workers or os.cpu_count() or 1
    runs, bundles = out / "runs", out / "bundles"
    for folder in (runs, bundles):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    print(f"scoreboard --demo: certifying {len(plan)} sandbox provinces in {workers} process(es), "
          f"{'quick set: ' + ', '.join(only) if quick else 'every check'}; logs in {runs}", flush=True)
    t0 = time.monotonic()
    results = _run_all(plan, only, runs, workers)
    unusable = [r["province"] for r in results if r["bundle"] is None]
    if unusable:
        raise HaicapError(f"scoreboard --demo: no bundle from province(s) {', '.join(unusable)} (see "
                          f"{runs}/<code>.log)")
    for result in results:
        shutil.copyfile(result["bundle"], bundles / f"{result['province']}.zip")
    view = _view(quick, only)
    doc = write_board(bundles, out, include_sandbox=True, view=view, quick=quick, max_age_days=3650)
    print(f"scoreboard --demo: {len(results)} certifications in {time.monotonic() - t0:.0f} s", flush=True)
    differ = [f"{c} {doc['totals'][c]}/34 (28 June: {n})" for c, n in view.expected.items() if doc["totals"][c] != n]
    for criterion, why in view.pending.items():
        print(f"  {criterion}: pending — {why}; not tested", flush=True)
    totals = ", ".join(f"{c} {n}/34" for c, n in doc["totals"].items())
    print(f"totals: {totals}", flush=True)
    if differ:
        print(f"DIFFERS from the 28-June checklist: {'; '.join(differ)}", flush=True)
    else:
        print("every judged column equals the 28-June checklist", flush=True)
    print(f"board: {out / 'board.html'}", flush=True)
    return 1 if differ or doc["rejected"] else 0
