"""``haicap sandbox --selftest``: drive real traffic through the real flows of a running sandbox, once.

Runs the shipped journeys (sign-on, submission, officer actions, payment, supplement, withdrawal, a forwarded
dossier) with the scenario engine against the reference province, with haicap's counterpart judging what
reaches the national side, and prints every step's outcome. Exit 0 only if every step passed.
"""

from __future__ import annotations

from typing import TextIO

from haicap.counterpart_client import CounterpartClient
from haicap.criteria import ALL_CAPABILITIES
from haicap.province_client import ProvinceClient
from haicap.sandbox.runner import Sandbox
from haicap.scenarios.data import PoolScenarioData
from haicap.scenarios.engine import ScenarioContext, ScenarioRunner, load_scenarios

__all__ = ["SELFTEST_SCENARIOS", "run_selftest"]

SELFTEST_SCENARIOS = (
    "birth-registration",
    "permanent-residence-paid",
    "household-business",
    "death-registration-supplement",
    "marriage-withdrawal",
    "forwarded-from-national",
)


def run_selftest(sandbox: Sandbox, out: TextIO, seed: int = 0) -> int:
    province_cfg = sandbox.configs.province
    print(f"haicap sandbox self-test: national {sandbox.national_url}  province {sandbox.province_url}", file=out)
    if sandbox.faults:
        print(f"faults switched on: {', '.join(sorted(sandbox.faults))}", file=out)
    scenarios = load_scenarios()
    data = PoolScenarioData.build(seed, province_cfg.province_code, size=500)
    failed = 0
    with CounterpartClient(sandbox.national_url, sandbox.configs.national.control_token) as national:
        for scenario_id in SELFTEST_SCENARIOS:
            scenario = scenarios[scenario_id]
            province = ProvinceClient(sandbox.province_url, officer_token=province_cfg.officer_token, seed=seed)
            context = ScenarioContext(
                province=province,
                national=national,
                data=data,
                capabilities=ALL_CAPABILITIES,
                province_code=province_cfg.province_code,
                sync_sla_seconds=10.0,
            )
            try:
                results = ScenarioRunner(context).run(scenario)
            finally:
                province.close()
            ok = len(results) == len(scenario.steps) and all(r.status == "passed" for r in results)
            failed += not ok
            print(f"\n{'PASS' if ok else 'FAIL'}  {scenario.id}: {scenario.title}", file=out)
            for result in results:
                extra = f"  — {result.message}" if result.message else ""
                print(f"  {result.status:<7} {result.call.label:<22} {result.seconds * 1000:7.1f} ms{extra}", file=out)
                if result.status in {"failed", "error"}:
                    print(f"          expected: {result.expected}\n          actual:   {result.actual}", file=out)
            ma_ho_so = context.state.get("ma_ho_so")
            if ma_ho_so:
                record = national.synced_dossier(ma_ho_so) or {}
                statuses = [h.get("TrangThaiHoSo") for h in record.get("history", [])]
                print(f"  national ledger for {ma_ho_so}: statuses {' → '.join(map(str, statuses)) or 'none'}",
                      file=out)
    print(f"\nself-test {'passed' if not failed else 'FAILED'}: {len(SELFTEST_SCENARIOS) - failed} of "
          f"{len(SELFTEST_SCENARIOS)} journeys passed", file=out)
    return 0 if not failed else 1
