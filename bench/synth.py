"""Deterministic synthetic members and events for the bench lines (seeded random).

Events are plain dicts as a POS/CRM would send them: Decimal amounts as strings,
timezone-aware ISO timestamps (mostly +08:00, some UTC ``Z``), in time order over the
first half of 2026 (inside one 12-month qualification window).
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))
START = datetime(2026, 1, 1, tzinfo=CST)
SPAN_SECONDS = 181 * 86400  # 2026-01-01 .. 2026-06-30 (+08:00)

# line/type mix in percent (use_right: members using an entitlement at the counter)
MIX = [
    ("retail", "purchase", 52.5), ("retail", "refund", 1.5), ("retail", "use_right", 0.5),
    ("hotel", "stay", 12.0), ("hotel", "dining", 7.6), ("hotel", "use_right", 0.4),
    ("property", "contract", 0.4), ("property", "service_fee", 4.6),
    ("entertainment", "ticket", 13.0), ("entertainment", "fnb", 7.0),
    ("entertainment", "use_right", 0.5),
]
RETAIL_CATEGORIES = ["beauty", "electronics", "fashion", "grocery", "home", "sports"]


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _money(x: float) -> str:
    return f"{x:.2f}"


def make_members(n: int, seed: int = 7) -> list[dict]:
    """Member profiles: id, birth month (10% unknown), enrolment date."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        enrolled = datetime(2019, 1, 1) + timedelta(days=rng.randrange(7 * 365))
        out.append({"id": f"M{i:05d}",
                    "birth_month": None if rng.random() < 0.1 else rng.randint(1, 12),
                    "enrolled_on": enrolled.date().isoformat()})
    return out


def make_events(n: int, members: int = 5000, seed: int = 20260101) -> list[dict]:
    rng = random.Random(seed)
    ids = [f"M{i:05d}" for i in range(members)]
    activity = [rng.lognormvariate(0, 1.0) for _ in ids]  # some members shop a lot
    cum_members = list(_accumulate(activity))
    kinds = [(ln, t) for ln, t, _ in MIX]
    cum_kinds = list(_accumulate([w for _, _, w in MIX]))
    offsets = sorted(rng.random() * SPAN_SECONDS for _ in range(n))
    purchases: list[tuple[str, str, float]] = []  # (event id, member, amount) refundable
    events = []
    for i, off in enumerate(offsets):
        at = START + timedelta(seconds=int(off))
        line, etype = rng.choices(kinds, cum_weights=cum_kinds)[0]
        member = rng.choices(ids, cum_weights=cum_members)[0]
        eid = f"{line[:3]}-{i:07d}"
        amount: float | None = None
        if etype == "purchase":
            amount = round(_log_uniform(rng, 5, 5000), 2)
            data = {"store": f"S{rng.randrange(200):03d}",
                    "category": rng.choice(RETAIL_CATEGORIES),
                    "channel": rng.choices(["store", "app", "web"], [55, 30, 15])[0]}
            if rng.random() < 0.05 and amount >= 100:
                data["giftcard_paid"] = _money(round(amount * rng.uniform(0.1, 0.5), 2))
            if rng.random() < 0.10 and amount >= 50:
                data["parking_fee"] = _money(rng.choice([5, 10, 15, 20]))
            if rng.random() < 0.02:
                data["giftcard_purchase"] = True
            purchases.append((eid, member, amount))
            if len(purchases) > 5000:
                del purchases[:1000]
        elif etype == "refund":
            if not purchases:
                continue
            orig_id, member, orig_amount = purchases.pop(rng.randrange(len(purchases)))
            amount = max(0.01, round(orig_amount * rng.choice([1.0, 0.5, rng.random()]), 2))
            data = {"related_event": orig_id, "reason": rng.choice(["size", "damaged", ""])}
        elif etype == "stay":
            nights = min(1 + int(rng.expovariate(0.6)), 14)
            amount = round(nights * _log_uniform(rng, 300, 3000), 2)
            data = {"hotel": f"H{rng.randrange(40):02d}",
                    "room_type": rng.choices(["standard", "deluxe", "suite"], [60, 30, 10])[0],
                    "nights": nights,
                    "channel": rng.choices(["app", "web", "ota", "front_desk"], [25, 15, 30, 30])[0],
                    "rate_code": rng.choices(["BAR", "CORP", "PKG", "OTA"], [45, 15, 15, 25])[0]}
        elif etype == "dining":
            covers = rng.choices([1, 2, 3, 4, 5, 6, 8], [15, 35, 15, 15, 8, 8, 4])[0]
            amount = round(covers * _log_uniform(rng, 50, 400), 2)
            data = {"hotel": f"H{rng.randrange(40):02d}",
                    "outlet": rng.choice(["cafe", "chinese", "grill", "bar"]), "covers": covers}
        elif etype == "contract":
            amount = round(_log_uniform(rng, 300_000, 5_000_000), 2)
            data = {"project": f"P{rng.randrange(12):02d}",
                    "unit_type": rng.choices(["apartment", "villa", "office", "parking_space"],
                                             [70, 10, 10, 10])[0],
                    "referral": rng.random() < 0.15, "first_home": rng.random() < 0.35}
        elif etype == "service_fee":
            months = rng.choices([1, 3, 6, 12], [60, 20, 10, 10])[0]
            amount = round(months * _log_uniform(rng, 200, 2000), 2)
            data = {"project": f"P{rng.randrange(12):02d}",
                    "service": rng.choice(["management", "parking", "utilities"]),
                    "months": months, "autopay": rng.random() < 0.4}
        elif etype == "ticket":
            tickets = rng.choices([1, 2, 3, 4, 5, 6], [25, 40, 10, 15, 5, 5])[0]
            amount = round(tickets * _log_uniform(rng, 30, 400), 2)
            data = {"venue": f"V{rng.randrange(30):02d}",
                    "kind": rng.choices(["cinema", "concert", "theme_park", "karaoke"],
                                        [50, 15, 15, 20])[0],
                    "tickets": tickets,
                    "channel": rng.choices(["box_office", "app", "web"], [30, 50, 20])[0]}
        elif etype == "fnb":
            amount = round(_log_uniform(rng, 20, 500), 2)
            data = {"venue": f"V{rng.randrange(30):02d}",
                    "outlet": rng.choice(["popcorn", "bar", "restaurant"])}
        else:  # use_right: an entitlement at the counter (ineligible tiers get rejected)
            right = {"retail": rng.choices(["retail-parking-2h", "retail-parking-4h",
                                            "retail-parking-8h"], [60, 30, 10])[0],
                     "hotel": "hotel-late-checkout",
                     "entertainment": "ent-fast-pass"}[line]
            data = {"right": right, "quantity": 1}
        ev = {"id": eid, "line": line, "type": etype, "member": member,
              "occurred_at": (at.astimezone(UTC).isoformat().replace("+00:00", "Z")
                              if rng.random() < 0.1 else at.isoformat()),
              "data": data}
        if amount is not None:
            ev["amount"] = _money(amount)
            ev["currency"] = "CNY"
        events.append(ev)
    return events


def _accumulate(weights):
    total = 0.0
    for w in weights:
        total += w
        yield total
