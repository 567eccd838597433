"""Viet Nam time, the one clock of the national contracts: parse, format and explain time-zone errors.

Every ThoiGian of the national APIs is ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh (UTC+7 all year, no daylight
saving), and the date part of a MaHoSo (``yyMMdd``) is the Vietnam date: a dossier received at 23:30 UTC is
already the next day in Viet Nam. A province whose clock or serialiser is in another zone sends times off by a
whole number of hours; :func:`whole_hours_off` tells that apart from a merely late or early time, so a check
can say "NgayTiepNhan is 7 h behind: a UTC time sent as Vietnam time" instead of "late by 25,200 s".

Example::

    to_ms("20250701080000")          # 1751331600000 (01:00 UTC)
    vn_date_code(1751412600000)      # '250702' (23:30 UTC on 1 July is 2 July in Viet Nam)
    whole_hours_off(-7 * 3600_000)   # -7
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

__all__ = [
    "VN_TZ",
    "describe_offset",
    "display_vn_utc",
    "format_thoi_gian",
    "to_ms",
    "vn_date_code",
    "whole_hours_off",
]

VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
HOUR_MS = 3_600_000
#: offsets beyond these are no time zone (UTC−12 … UTC+14 against UTC+7)
_MAX_HOURS = 21


def to_ms(value: object) -> int | None:
    """A ``yyyyMMddHHmmss`` Vietnam time as epoch milliseconds, or None if it is not one."""
    if not isinstance(value, str) or len(value) != 14 or not value.isdigit():
        return None
    try:
        moment = datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


def format_thoi_gian(epoch_ms: int | float) -> str:
    """Epoch milliseconds as ``yyyyMMddHHmmss`` in Vietnam time."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")


def vn_date_code(epoch_ms: int | float) -> str:
    """The Vietnam date (``yyMMdd``, as in a MaHoSo) of an instant."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).astimezone(VN_TZ).strftime("%y%m%d")


def whole_hours_off(error_ms: int, tolerance_ms: int = 120_000) -> int | None:
    """The whole number of hours (non-zero, at most 21) that ``error_ms`` (value − true time) is, within
    ``tolerance_ms``; None when the error is not a time-zone shift (0 h, or not near a whole hour)."""
    hours = round(error_ms / HOUR_MS)
    if hours == 0 or abs(hours) > _MAX_HOURS or abs(error_ms - hours * HOUR_MS) > tolerance_ms:
        return None
    return hours


def describe_offset(field: str, hours: int) -> str:
    """``"NgayTiepNhan is 7 h behind: a UTC time sent as Vietnam time"`` (the zone named when it is a known one)."""
    direction = "behind" if hours < 0 else "ahead"
    zone = 7 + hours  # the zone the sender wrote the time in, as UTC+zone
    named = "UTC" if zone == 0 else f"UTC{zone:+d}"
    return f"{field} is {abs(hours)} h {direction}: a {named} time sent as Vietnam time"


def display_vn_utc(iso: object) -> str:
    """An ISO 8601 instant for a reader in Viet Nam: ``2026-12-02 08:54:42 +07:00 (01:54:42 UTC)`` (the UTC date
    too when it differs). A value without a zone is taken as UTC; one that is not a time is returned as given."""
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local, utc = moment.astimezone(VN_TZ), moment.astimezone(UTC)
    same_day = local.date() == utc.date()
    utc_text = utc.strftime("%H:%M:%S UTC" if same_day else "%Y-%m-%d %H:%M:%S UTC")
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} +07:00 ({utc_text})"
