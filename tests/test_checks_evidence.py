"""Evidence a province can act on: a late sync is not blamed on fields (SYNC-02 skips with the cause), counts
and lists agree (SYNC-01's "+N more"), and a refused-callback check says what was sent and what came back."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from haicap.conformance.checks.payment import callback_amount
from haicap.conformance.checks.sync import every_change_in_time, listed, required_fields
from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckFailure, CheckSkipped
from haicap.target import open_target


def test_listed_counts_what_it_does_not_show() -> None:
    assert listed(list(range(18))) == [*range(10), "+8 more"]
    assert listed(list(range(10))) == list(range(10))
    assert listed(["a", "b", "c"], 2) == ["a", "b", "+1 more"]


@pytest.fixture(scope="module")
def late_and_lenient() -> Iterator[CheckContext]:
    """A province that syncs 30 s late and accepts any callback amount; an SLA of 1 s keeps the wait short."""
    with open_target(None, faults={"late-sync", "accepts-wrong-amount"}) as target:
        ctx = CheckContext(dataclasses.replace(target, sync_sla_seconds=1.0))
        yield ctx
        ctx.close()


def test_sync02_does_not_blame_fields_for_a_late_sync(late_and_lenient: CheckContext) -> None:
    with pytest.raises(CheckSkipped) as raised:
        required_fields(late_and_lenient)
    message = str(raised.value)
    assert message.startswith("could not check fields: nothing arrived within the SLA for ")
    assert "not a field defect" in message and "GET <national>" not in message  # how to look: reproduce
    assert (raised.value.reproduce or "").startswith("GET <national>/_ledger/sync/dossiers/")


def test_sync01_lists_every_missing_change_or_counts_the_rest(late_and_lenient: CheckContext) -> None:
    with pytest.raises(CheckFailure) as raised:
        every_change_in_time(late_and_lenient)
    failure = raised.value
    total = int(failure.message.split(" of ")[0])
    shown = failure.actual["not_received"]
    more = int(shown[-1].split()[0].lstrip("+")) if isinstance(shown[-1], str) else 0
    assert total > 10 and len([s for s in shown if isinstance(s, dict)]) + more == total, (failure.message, shown)


def test_pay03_says_what_the_tampered_callback_carried_and_what_came_back(late_and_lenient: CheckContext) -> None:
    with pytest.raises(CheckFailure) as raised:
        callback_amount(late_and_lenient)
    failure = raised.value
    sent = failure.actual["sent"]
    fee = sent["fee_of_the_dossier"]
    assert fee > 0 and sent["SoTien_sent"] == fee + 1000 and sent["defect"].startswith("wrong-amount: SoTien changed")
    assert sent["callback"]["SoTien"] == fee + 1000 and "MaXacThuc" not in sent["callback"]
    assert failure.actual["province_answer"]["answer"]["MaLoi"] == "00"
    assert f"SoTien {fee + 1000} for a fee of {fee}, validly signed" in failure.message
    assert "HTTP 200, MaLoi '00'" in failure.message
