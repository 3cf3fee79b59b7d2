"""Calendar periods that caps and quotas count over, as counter keys.

A cap "per month" counts in the group timezone's calendar month; the key of that period
(``m2026-05``) names the member's counter for it. Separate so that deciding, rights and the
state agree on one definition of a period.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache


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


RECENT_DAYS, RECENT_WEEKS, RECENT_MONTHS, RECENT_YEARS = 31, 5, 12, 2


@lru_cache(maxsize=4096)
def recent_periods(day: date) -> frozenset[str]:
    """Counter period keys a member carries on ``day``: the last 31 days, 5 weeks, 12 months
    and 2 years (each including the current one), and lifetime. Enough for caps, quotas and
    streaks of a month; older counters stay in the store but no rule or plugin sees them."""
    keys = {"all"}
    keys.update(period_key("day", day - timedelta(days=i)) for i in range(RECENT_DAYS))
    keys.update(period_key("week", day - timedelta(weeks=i)) for i in range(RECENT_WEEKS))
    index = day.year * 12 + day.month - 1
    keys.update(f"m{(index - i) // 12:04d}-{(index - i) % 12 + 1:02d}"
                for i in range(RECENT_MONTHS))
    keys.update(f"y{day.year - i:04d}" for i in range(RECENT_YEARS))
    return frozenset(keys)
