"""Timestamps in the national formats: ``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh (UTC+7, no daylight saving)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["VN_TZ", "thoi_gian"]

VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")


def thoi_gian(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as ThoiGian, yyyyMMddHHmmss in Viet Nam time."""
    return (moment or datetime.now(VN_TZ)).astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")
