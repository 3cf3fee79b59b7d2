"""Calendar periods that caps and quotas count over, as counter keys.

A cap "per month" counts in the group timezone's calendar month; the key of that period
(``m2026-05``) names the member's counter for it. Separate so that deciding, rights and the
state agree on one definition of a period.
"""

from __future__ import annotations

from datetime import date


def period_key(per: str, day: date) -> str | None:
    """The counter key of the period containing ``day`` (None for per-event caps)."""
    if per == "month":
        return f"m{day.year:04d}-{day.month:02d}"
    if per == "day":
        return f"d{day.isoformat()}"
    if per == "year":
        return f"y{day.year:04d}"
    if per == "week":
        iso = day.isocalendar()
        return f"w{iso.year:04d}-{iso.week:02d}"
    if per == "lifetime":
        return "all"
    return None
